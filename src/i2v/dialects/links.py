"""Media links: signed capability URLs for stored objects, and what they serve as.

Media URLs work with no API key (clients download them with plain HTTP, and the
WaveSpeed SDK PUTs uploads with only the ticket's headers) but only with a valid
signature: knowing a prediction id is never enough. GET and PUT capabilities are
signed differently, so a download URL cannot be used to overwrite the object.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from i2v.storage.signing import UrlSigner

MEDIA_PREFIX = "/media/"
SERVED_TYPES = {
    ".mp4": "video/mp4",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
}
_PUT = "PUT "


def url(base_url: str, signer: UrlSigner, key: str, *, not_after: int | None = None) -> str:
    """The signed download URL of `key` on `base_url`; `not_after`: the Unix time it
    stops working at the latest (when its object expires)."""
    return f"{base_url}{MEDIA_PREFIX}{quote(key)}?{signer.sign(key, not_after=not_after)}"


def put_url(base_url: str, signer: UrlSigner, key: str) -> str:
    """The signed upload URL of `key`: it grants a PUT, never a download."""
    return f"{base_url}{MEDIA_PREFIX}{quote(key)}?{signer.sign(_PUT + key)}"


def put_allowed(signer: UrlSigner, key: str, query: str) -> bool:
    """Whether a PUT URL's query string (`exp`, `iat`, `sig`) grants an upload to `key`."""
    return signer.verify(_PUT + key, query)


def own_key(signer: UrlSigner, value: str) -> str | None:
    """The storage key behind one of our own signed media URLs, whatever host it names."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return None  # not a URL at all; the fetcher names the problem
    if parts.scheme not in ("http", "https") or not parts.path.startswith(MEDIA_PREFIX):
        return None
    key = unquote(parts.path[len(MEDIA_PREFIX) :])
    return key if signer.verify(key, parts.query) else None


def media_type(key: str) -> str:
    return SERVED_TYPES.get(Path(key).suffix.lower(), "application/octet-stream")


def kind(key: str) -> str:
    """`video`, `image`, ... as WaveSpeed's upload answer names it."""
    return media_type(key).split("/")[0] if key else "file"

"""Turn an image input value (data: URI, bare base64 or URL) into bytes or a URL to fetch."""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote_to_bytes, urlsplit

from i2v.domain.errors import InputError
from i2v.intake.image import RUNCOMFY_RULES, sniff_format

MAX_URL_LENGTH = 2048  # what browsers and CDNs reliably carry; a signed S3 URL is ~1,500


def inline_max_chars(max_bytes: int) -> int:
    """The longest inline value (base64 or data: URI) an image of under `max_bytes` can
    need: its base64, a MIME line break every 76 characters, and a data: prefix."""
    encoded = 4 * -(-max_bytes // 3)
    return encoded + encoded // 76 * 2 + 256


# The cap on an image field's string, URL or inline (6.4 M characters for 4.7 MB): a longer
# value cannot be an acceptable image, and is refused before anything walks it.
IMAGE_MAX_CHARS = inline_max_chars(RUNCOMFY_RULES.max_bytes or 0)

# Bare base64 is recognised only when it decodes to something with a known magic number;
# anything shorter than a few bytes of header cannot be an image.
_MIN_BARE_BASE64 = 16
_BASE64_ALPHABET = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_WHITESPACE = re.compile(r"\s+")
_DATA_URI = re.compile(r"data:(?P<meta>[^,]*),(?P<payload>.*)", re.IGNORECASE | re.DOTALL)


def parse_inline(value: str, field: str) -> bytes | None:
    """Bytes of a `data:` URI or bare base64 image; None when `value` is not inline.

    Raises `InputError` naming `field` when the value is clearly meant as inline data but its
    encoding is broken.
    """
    stripped = value.strip()
    if stripped[:8].lower().startswith(("http://", "https://")):
        return None
    fast = _strict_b64decode(stripped)
    if fast is not None:
        # The common case (plain standard base64) without scanning 6 MB through regexes.
        return fast if sniff_format(fast) not in (None, "text") else None
    match = _DATA_URI.fullmatch(stripped)
    if match is not None:
        return _decode_data_uri(match.group("meta"), match.group("payload"), field)
    if stripped[:5].lower() == "data:":
        raise InputError(
            "data: URI must look like 'data:image/png;base64,...', got no ',' separator",
            field=field,
            value=_preview(value),
        )
    compact = _WHITESPACE.sub("", stripped)
    if len(compact) < _MIN_BARE_BASE64 or not _BASE64_ALPHABET.fullmatch(compact):
        return None
    try:
        data = _b64decode(compact)
    except ValueError:
        # A long run of the base64 alphabet that does not decode was almost surely meant as
        # base64; saying so beats "must be a URL".
        if len(compact) >= 64:
            raise InputError(
                f"is not valid base64 ({len(compact)} characters)",
                field=field,
                value=_preview(value),
            ) from None
        return None
    if sniff_format(data) in (None, "text"):
        return None
    return data


def _strict_b64decode(text: str) -> bytes | None:
    if len(text) < _MIN_BARE_BASE64 or len(text) % 4:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        return None


def require_url(value: str, field: str) -> str:
    """`value` when it is an absolute http(s) URL with a host, of at most `MAX_URL_LENGTH`
    characters; otherwise `InputError`."""
    _check_length(value, field, MAX_URL_LENGTH)
    return _require_url(value, field, "an absolute http(s) URL, a data: URI or base64")


def require_http_url(value: str, field: str, *, max_length: int = MAX_URL_LENGTH) -> str:
    """The same rule for a field that only takes a URL (a webhook)."""
    _check_length(value, field, max_length)
    return _require_url(value, field, "an absolute http(s) URL")


def _check_length(value: str, field: str, max_length: int) -> None:
    if len(value) > max_length:
        raise InputError(
            f"URL must be at most {max_length} characters, got {len(value)}",
            field=field,
            value=_preview(value),
        )


def _require_url(value: str, field: str, accepted: str) -> str:
    url = value.strip()
    problem = _url_problem(url)
    if problem:
        raise InputError(
            f"must be {accepted}, got {_preview(value)!r}"
            + (f" ({problem})" if problem != "scheme" else ""),
            field=field,
            value=value,
        )
    return url


def _url_problem(url: str) -> str | None:
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        return "it contains spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return str(exc)
    if parts.scheme.lower() not in ("http", "https"):
        return "scheme"
    if not parts.hostname:
        return "it has no host"
    if port == 0:
        return "port 0"
    return None


def _decode_data_uri(meta: str, payload: str, field: str) -> bytes:
    params = [p.strip().lower() for p in meta.split(";")]
    mediatype = params[0]
    if mediatype and not mediatype.startswith("image/") and mediatype != "application/octet-stream":
        raise InputError(
            f"data: URI must carry an image, got media type {mediatype!r}",
            field=field,
            value=_preview(payload),
        )
    if "base64" not in params[1:]:
        return unquote_to_bytes(payload)
    try:
        return _b64decode(_WHITESPACE.sub("", unquote_to_bytes(payload).decode("ascii")))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(
            f"data: URI is not valid base64 ({exc})", field=field, value=_preview(payload)
        ) from None


def _b64decode(text: str) -> bytes:
    """Standard or URL-safe base64, padding optional. ValueError when it does not decode."""
    body = text.rstrip("=")
    if len(body) % 4 == 1:
        raise ValueError("length is not a valid base64 length")
    padded = body + "=" * (-len(body) % 4)
    alphabet = b"-_" if ("-" in body or "_" in body) else b"+/"
    if alphabet == b"-_" and ("+" in body or "/" in body):
        raise ValueError("mixes the standard and URL-safe alphabets")
    try:
        return base64.b64decode(padded, altchars=alphabet, validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None


def _preview(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."

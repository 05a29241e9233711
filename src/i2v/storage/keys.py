"""Object keys: `/`-separated relative paths, checked before any store touches them."""

from __future__ import annotations

from i2v.domain.errors import InputError

MAX_KEY_LENGTH = 1024


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative object key; `InputError` naming the rule if not."""
    if not key:
        raise InputError("must not be empty", field="key", value=key)
    if len(key) > MAX_KEY_LENGTH:
        raise InputError(
            f"must be at most {MAX_KEY_LENGTH} characters, got {len(key)}", field="key", value=key
        )
    if "\\" in key or "\x00" in key:
        raise InputError(
            f"must not contain backslashes or NUL, got {key!r}", field="key", value=key
        )
    if key.startswith("/") or (len(key) > 1 and key[1] == ":"):
        raise InputError(f"must be a relative path, got {key!r}", field="key", value=key)
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InputError(
                f"segments must be non-empty and not '.' or '..', got {key!r}",
                field="key",
                value=key,
            )
    return key

"""How logs and pages name an owner: by a key id, never by the key."""

from __future__ import annotations

KEY_ID_LENGTH = 12


def key_id(owner: str) -> str:
    """The owner's short id: the first characters of its key's SHA-256 (the owner id).
    It tells keys apart in logs and on the admin page, and reveals nothing of the key."""
    return owner[:KEY_ID_LENGTH]

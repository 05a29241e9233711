"""Idempotent submits: a client's `Idempotency-Key` and the hash of the body it came with.

A retried submit (same key, same body) within `IDEMPOTENCY_WINDOW` gets the prediction the
first one created; the same key with another body is a conflict. The body is compared by
the SHA-256 of its canonical JSON (sorted keys, no spaces), so key order and whitespace in
the client's JSON do not matter.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from i2v.domain.errors import InputError

IDEMPOTENCY_WINDOW = timedelta(hours=24)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Idempotency:
    key: str  # the client's Idempotency-Key header
    body_hash: str  # `body_hash` of what it submitted

    @classmethod
    def of(cls, key: str, body: Any) -> Idempotency:
        """The header's key (checked) and the hash of the submitted body."""
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            raise InputError(
                f"must be 1 to {MAX_KEY_LENGTH} characters, got {len(key)}",
                field="Idempotency-Key",
                value=key,
            )
        return cls(key=key, body_hash=body_hash(body))


def body_hash(body: Any) -> str:
    """SHA-256 hex of `body` as canonical JSON."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()

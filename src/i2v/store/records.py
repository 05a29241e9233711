"""Small values the store hands back besides predictions."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from i2v.domain.prediction import Prediction


@dataclass(frozen=True)
class KeyRecord:
    """An API key as stored: only its hash, never the key."""

    key_hash: str  # sha256 hex of the key
    name: str
    prefix: str  # the key's first characters, so people can tell keys apart
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class CancelKind(enum.StrEnum):
    CANCELLED = "cancelled"  #: it was queued and is now cancelled
    CANCEL_REQUESTED = "cancel_requested"  #: it is running; its worker will stop it
    NOT_CANCELLABLE = "not_cancellable"  #: it had already finished


@dataclass(frozen=True)
class CancelOutcome:
    kind: CancelKind
    prediction: Prediction  # the row after the cancel

"""Small values the store hands back besides predictions."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from i2v.domain.limits import Limits
from i2v.domain.prediction import Prediction


@dataclass(frozen=True)
class KeyRecord:
    """An API key as stored: only its hash, never the key."""

    key_hash: str  # sha256 hex of the key
    name: str
    prefix: str  # the key's first characters, so people can tell keys apart
    created_at: datetime
    revoked_at: datetime | None = None
    # This key's own limits (i2v.domain.limits); None: the server-wide default.
    max_queued: int | None = None
    max_running: int | None = None
    rate_per_minute: int | None = None
    weight: float | None = None
    admin: bool = False  # may see the operator page (/admin)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def limits(self, defaults: Limits) -> Limits:
        """The limits this key runs under: its own where it set them, else `defaults`."""
        return defaults.overridden(
            max_queued=self.max_queued,
            max_running=self.max_running,
            rate_per_minute=self.rate_per_minute,
            weight=self.weight,
        )


class CancelKind(enum.StrEnum):
    CANCELLED = "cancelled"  #: it was queued and is now cancelled
    CANCEL_REQUESTED = "cancel_requested"  #: it is running; its worker will stop it
    NOT_CANCELLABLE = "not_cancellable"  #: it had already finished


@dataclass(frozen=True)
class CancelOutcome:
    kind: CancelKind
    prediction: Prediction  # the row after the cancel


@dataclass(frozen=True)
class Upload:
    key: str  # its object's storage key (`i2v.storage.keys.upload_key`)
    owner: str
    size: int  # bytes: stored, or declared by a ticket whose PUT has not come
    created_at: datetime
    written_at: datetime | None  # when its bytes were stored; None: a ticket awaiting its PUT
    used_at: datetime | None  # when a submit last used it

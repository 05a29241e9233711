"""The job store: predictions (which are the queue) and API keys, in SQLite or PostgreSQL."""

from __future__ import annotations

from i2v.store.clock import utcnow
from i2v.store.records import CancelKind, CancelOutcome, KeyRecord
from i2v.store.store import Store

__all__ = ["CancelKind", "CancelOutcome", "KeyRecord", "Store", "utcnow"]

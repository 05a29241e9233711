"""Retention: how long a finished prediction's media (its inputs and outputs) are kept.

Media expire `hours` after their prediction finished; 0 keeps them forever. A prediction
that has not finished keeps its input however long it waits. An upload expires when no
submit made or used it for `upload_hours`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from i2v.domain.prediction import Prediction


@dataclass(frozen=True)
class Retention:
    hours: float = 168.0  # 0: forever
    upload_hours: float = 24.0

    @property
    def forever(self) -> bool:
        return self.hours <= 0

    def expires_at(self, p: Prediction) -> datetime | None:
        """When `p`'s media expire (or expired); None while it runs, or when kept forever."""
        if self.forever or p.finished_at is None:
            return None
        return p.finished_at + timedelta(hours=self.hours)

    def finished_before(self, now: datetime) -> datetime | None:
        """Predictions finished before this have expired media; None when kept forever."""
        return None if self.forever else now - timedelta(hours=self.hours)

    def uploaded_before(self, now: datetime) -> datetime:
        """Uploads neither made nor used since this have expired."""
        return now - timedelta(hours=self.upload_hours)

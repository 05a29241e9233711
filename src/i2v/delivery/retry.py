"""When a failed webhook is tried again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int  # in all, the first included
    first_wait_s: float  # before the second attempt; each later wait is 4x the one before
    max_wait_s: float

    def retry_at(self, attempt: int, now: datetime) -> datetime | None:
        """When to try again after `attempt` (1-based) failed; None once attempts run out."""
        if attempt >= self.attempts:
            return None
        wait = min(self.first_wait_s * 4 ** (attempt - 1), self.max_wait_s)
        return now + timedelta(seconds=wait)

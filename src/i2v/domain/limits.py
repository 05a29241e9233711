"""What one API key may do: how many predictions it may have queued and running, how fast
it may submit, and its share of the workers when several keys have work queued."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """A key's limits; None: unlimited. Server-wide defaults come from settings; a key
    created with `i2v keys create --max-queued ...` overrides them one by one."""

    max_queued: int | None = None  # predictions waiting in the queue at once
    max_running: int | None = None  # rendering at once; more just wait their turn
    rate_per_minute: int | None = None  # submits in any 60 s window
    weight: float = 1.0  # share of claims when keys compete: 2.0 gets twice the turns

    def __post_init__(self) -> None:
        for name in ("max_queued", "max_running", "rate_per_minute"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name}: must be at least 1 (or unset), got {value}")
        if not self.weight > 0:
            raise ValueError(f"weight: must be above 0, got {self.weight}")

    def overridden(
        self,
        *,
        max_queued: int | None = None,
        max_running: int | None = None,
        rate_per_minute: int | None = None,
        weight: float | None = None,
    ) -> Limits:
        """These limits with each given (not None) value replacing the default."""
        return Limits(
            max_queued=self.max_queued if max_queued is None else max_queued,
            max_running=self.max_running if max_running is None else max_running,
            rate_per_minute=self.rate_per_minute if rate_per_minute is None else rate_per_minute,
            weight=self.weight if weight is None else weight,
        )

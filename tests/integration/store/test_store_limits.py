"""Limits per key, kept in the database: two Store objects on one database stand for two
API processes, and the limits hold across them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from i2v.domain.errors import RateLimited
from i2v.domain.limits import Limits
from i2v.domain.prediction import Prediction
from i2v.store import Store

if TYPE_CHECKING:
    from conftest import FakeClock  # the store tier's; a name only here

Make = Callable[..., Prediction]


def test_max_queued_holds_across_two_processes(db_url: str, clock: FakeClock, make: Make) -> None:
    limits = Limits(max_queued=3)
    with (
        Store.open(db_url, clock=clock, limits=limits) as one,
        Store.open(db_url, clock=clock, limits=limits) as two,
    ):
        one.queue.submit(make())
        two.queue.submit(make())
        one.queue.submit(make())
        with pytest.raises(RateLimited, match="max_queued") as refused:
            two.queue.submit(make())
        assert refused.value.retry_after_s > 0
        one.queue.submit(make(owner="bob"))  # another key is not held back
        assert two.queue.claim("w", lease_seconds=60) is not None
        two.queue.submit(make())  # one started: room again
        assert one.predictions.queue_length() == 4


def test_rate_per_minute_with_retry_after(db_url: str, clock: FakeClock, make: Make) -> None:
    with (
        Store.open(db_url, clock=clock, limits=Limits(rate_per_minute=2)) as one,
        Store.open(db_url, clock=clock, limits=Limits(rate_per_minute=2)) as two,
    ):
        one.queue.submit(make(created_at=clock.now))
        clock.advance(20)
        two.queue.submit(make(created_at=clock.now))
        clock.advance(10)
        with pytest.raises(RateLimited, match="rate_per_minute") as refused:
            one.queue.submit(make(created_at=clock.now))
        assert refused.value.retry_after_s == pytest.approx(30)  # the first leaves the window
        clock.advance(30.001)
        one.queue.submit(make(created_at=clock.now))


def test_a_keys_own_limits_override_the_defaults(db_url: str, make: Make) -> None:
    with Store.open(db_url, limits=Limits(max_queued=1)) as store:
        store.keys.add("roomy", name="roomy", prefix="roomy", max_queued=3)
        for _ in range(3):
            store.queue.submit(make(owner="roomy"))
        with pytest.raises(RateLimited):
            store.queue.submit(make(owner="roomy"))
        store.queue.submit(make(owner="plain"))
        with pytest.raises(RateLimited):
            store.queue.submit(make(owner="plain"))
        assert [k.max_queued for k in store.keys.list()] == [3]


def test_limits_must_be_positive(store: Store) -> None:
    with pytest.raises(ValueError, match="max_running"):
        store.keys.add("k", name="k", prefix="k", max_running=0)

"""Idempotent submits: the same Idempotency-Key and body give the first prediction back,
across Store objects (processes) and reopening (restarts); another body is a conflict."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from i2v.domain.errors import Conflict
from i2v.domain.idempotency import Idempotency, body_hash
from i2v.domain.prediction import Prediction
from i2v.store import Store

if TYPE_CHECKING:
    from conftest import FakeClock  # the store tier's; a name only here

Make = Callable[..., Prediction]
BODY = {"prompt": "a cat", "image": "https://example.com/cat.png", "seed": 1}


def test_a_retried_submit_returns_the_original_across_restarts(
    db_url: str, clock: FakeClock, make: Make
) -> None:
    key = Idempotency.of("retry-1", BODY)
    with Store.open(db_url, clock=clock) as store:
        first = store.queue.submit(make(created_at=clock.now), idempotency=key)
    clock.advance(3600)
    with Store.open(db_url, clock=clock) as reopened:
        again = reopened.queue.submit(make(created_at=clock.now), idempotency=key)
        assert again.id == first.id
        assert reopened.predictions.queue_length() == 1
        # The key is the owner's: another owner's same key is a new prediction.
        other = reopened.queue.submit(make(owner="bob"), idempotency=key)
        assert other.id != first.id


def test_the_same_key_with_another_body_is_a_conflict(store: Store, make: Make) -> None:
    first = store.queue.submit(make(), idempotency=Idempotency.of("k", BODY))
    with pytest.raises(Conflict, match=f"Idempotency-Key.*{first.id}.*different"):
        store.queue.submit(make(), idempotency=Idempotency.of("k", {**BODY, "seed": 2}))


def test_key_order_in_the_body_does_not_matter() -> None:
    assert body_hash({"a": 1, "b": [1, 2]}) == body_hash({"b": [1, 2], "a": 1})
    assert body_hash({"a": 1}) != body_hash({"a": 2})


def test_a_key_is_free_again_after_a_day(store: Store, clock: FakeClock, make: Make) -> None:
    first = store.queue.submit(make(created_at=clock.now), idempotency=Idempotency.of("k", BODY))
    clock.advance(24 * 3600 + 1)
    other = Idempotency.of("k", {**BODY, "seed": 9})
    second = store.queue.submit(make(created_at=clock.now), idempotency=other)
    assert second.id != first.id
    assert store.queue.submit(make(), idempotency=other).id == second.id


def test_submitted_finds_the_earlier_prediction_without_writing(store: Store, make: Make) -> None:
    key = Idempotency.of("k", BODY)
    assert store.queue.submitted("alice", key) is None
    first = store.queue.submit(make(), idempotency=key)
    found = store.queue.submitted("alice", key)
    assert found is not None
    assert found.id == first.id
    with pytest.raises(Conflict):
        store.queue.submitted("alice", Idempotency.of("k", {"other": 1}))

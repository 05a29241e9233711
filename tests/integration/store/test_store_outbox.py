"""The webhook outbox: a finished prediction with a webhook owes one delivery, claimed,
leased, retried and fenced like a job (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from conftest import FakeClock
from i2v.domain.prediction import Prediction
from i2v.store import Store

Make = Callable[..., Prediction]
HOOK = "https://hooks.example/i2v"


def finish(store: Store, p: Prediction) -> None:
    claimed = store.queue.claim("w", lease_seconds=30)
    assert claimed is not None
    assert claimed.id == p.id
    store.queue.succeed(
        p.id, attempt=1, worker_id="w", output_key="outputs/x/1.mp4", inference_ms=5, nsfw=[False]
    )


def test_only_finished_predictions_with_a_webhook_owe_a_delivery(store: Store, make: Make) -> None:
    hooked = store.queue.submit(make(webhook=HOOK))
    store.queue.submit(make())  # no webhook
    assert store.predictions.get(hooked.id).webhook == HOOK
    assert store.outbox.claim(limit=10, lease_seconds=30, max_attempts=5) == []  # not finished yet
    finish(store, hooked)
    (delivery,) = store.outbox.claim(limit=10, lease_seconds=30, max_attempts=5)
    assert delivery.prediction.id == hooked.id
    assert delivery.prediction.webhook == HOOK
    assert delivery.attempt == 1


def test_cancel_and_sweep_owe_deliveries_too(store: Store, make: Make, clock: FakeClock) -> None:
    queued = store.queue.submit(make(webhook=HOOK))
    store.queue.cancel(queued.id, owner="alice")
    lost = store.queue.submit(make(webhook=HOOK, max_attempts=1))
    store.queue.claim("w", lease_seconds=30)
    clock.advance(31)
    assert store.queue.sweep() == 1
    owed = store.outbox.claim(limit=10, lease_seconds=30, max_attempts=5)
    assert {d.prediction.id: d.prediction.status.value for d in owed} == {
        queued.id: "cancelled",
        lost.id: "failed",
    }


def test_a_claimed_delivery_is_leased_then_reclaimed_with_the_next_attempt(
    store: Store, make: Make, clock: FakeClock
) -> None:
    p = store.queue.submit(make(webhook=HOOK))
    finish(store, p)
    (first,) = store.outbox.claim(limit=10, lease_seconds=30, max_attempts=5)
    assert store.outbox.claim(limit=10, lease_seconds=30, max_attempts=5) == []  # leased
    clock.advance(31)  # the sender died mid-send
    (second,) = store.outbox.claim(limit=10, lease_seconds=30, max_attempts=5)
    assert second.attempt == first.attempt + 1
    assert not store.outbox.delivered(p.id, attempt=first.attempt)  # too late: fenced
    assert store.outbox.delivered(p.id, attempt=second.attempt)
    clock.advance(3600)
    assert store.outbox.claim(limit=10, lease_seconds=30, max_attempts=5) == []
    done = store.predictions.get(p.id)
    assert (done.webhook_attempts, done.webhook_done_at, done.webhook_error) == (
        2,
        clock.now - timedelta(seconds=3600),
        "",
    )


def test_a_failed_attempt_waits_for_its_retry_time_or_gives_up(
    store: Store, make: Make, clock: FakeClock
) -> None:
    p = store.queue.submit(make(webhook=HOOK))
    finish(store, p)
    (d,) = store.outbox.claim(limit=10, lease_seconds=30, max_attempts=5)
    retry_at = clock.now + timedelta(seconds=5)
    assert store.outbox.failed(p.id, attempt=d.attempt, error="HTTP 503", retry_at=retry_at)
    assert store.outbox.claim(limit=10, lease_seconds=30, max_attempts=5) == []
    clock.advance(5)
    (again,) = store.outbox.claim(limit=10, lease_seconds=30, max_attempts=5)
    assert again.attempt == 2
    assert store.outbox.failed(p.id, attempt=2, error="HTTP 410", retry_at=None)
    clock.advance(3600)
    assert store.outbox.claim(limit=10, lease_seconds=30, max_attempts=5) == []
    gave_up = store.predictions.get(p.id)
    assert (gave_up.webhook_attempts, gave_up.webhook_done_at, gave_up.webhook_error) == (
        2,
        clock.now - timedelta(seconds=3600),
        "HTTP 410",
    )


def test_claim_takes_at_most_limit_oldest_first(store: Store, make: Make) -> None:
    ps = [store.queue.submit(make(webhook=HOOK)) for _ in range(3)]
    for p in ps:
        finish(store, p)
    first = store.outbox.claim(limit=2, lease_seconds=30, max_attempts=5)
    rest = store.outbox.claim(limit=2, lease_seconds=30, max_attempts=5)
    assert [d.prediction.id for d in first + rest] == [p.id for p in ps]


def test_claims_go_round_robin_over_owners(store: Store, make: Make) -> None:
    """One owner's backlog cannot take every slot: each owner's oldest first, then each
    owner's second, and with `per_owner`, no owner past its share in flight."""

    def finished(owner: str) -> Prediction:
        p = store.queue.submit(make(owner=owner, webhook=HOOK))
        finish(store, p)
        return p

    alices = [finished("alice") for _ in range(5)]
    bob = finished("bob")
    first = store.outbox.claim(limit=2, lease_seconds=30, max_attempts=5)
    assert [d.prediction.id for d in first] == [alices[0].id, bob.id]
    capped = store.outbox.claim(
        limit=10, lease_seconds=30, max_attempts=5, per_owner=2, busy={"alice": 1}
    )
    assert [d.prediction.id for d in capped] == [alices[1].id]  # alice: 1 busy + 1 = 2
    rest = store.outbox.claim(limit=10, lease_seconds=30, max_attempts=5, per_owner=2)
    assert [d.prediction.id for d in rest] == [a.id for a in alices[2:4]]

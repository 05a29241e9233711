from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from i2v.domain.errors import LeaseLost
from i2v.domain.prediction import Prediction
from i2v.domain.status import Status
from i2v.store import Store

Make = Callable[..., Prediction]


def test_claim_takes_the_oldest_first(store: Store, make: Make) -> None:
    ids = [store.queue.submit(make()).id for _ in range(4)]
    claimed = [store.queue.claim(f"w{i}", lease_seconds=30) for i in range(4)]
    assert [c.id for c in claimed if c] == ids
    assert store.queue.claim("w", lease_seconds=30) is None


def test_claim_sets_lease_attempt_and_start(store: Store, make: Make, clock: Any) -> None:
    p = store.queue.submit(make())
    c = store.queue.claim("w1", lease_seconds=30)
    assert c is not None
    assert c.id == p.id
    assert c.status is Status.RUNNING
    assert c.attempt == 1
    assert c.lease_owner == "w1"
    assert c.started_at == clock.start
    assert (c.lease_until - clock.start).total_seconds() == 30


def test_claim_filters_by_engine(store: Store, make: Make) -> None:
    motion = store.queue.submit(make(engine="motion"))
    wan = store.queue.submit(make(engine="wan"))
    assert store.queue.claim("gpu", lease_seconds=30, engines=[]) is None
    got = store.queue.claim("gpu", lease_seconds=30, engines={"wan", "ltx"})
    assert got is not None
    assert got.id == wan.id
    assert store.queue.claim("gpu", lease_seconds=30, engines={"wan"}) is None
    got = store.queue.claim("cpu", lease_seconds=30, engines=None)
    assert got is not None
    assert got.id == motion.id


def test_heartbeat_extends_lease_and_records_progress(store: Store, make: Make, clock: Any) -> None:
    p = store.queue.submit(make())
    store.queue.claim("w1", lease_seconds=10)
    clock.advance(8)
    assert not store.queue.heartbeat(
        p.id, attempt=1, worker_id="w1", lease_seconds=10, progress=0.25, message="step 5/20"
    )
    clock.advance(8)  # past the first lease, inside the renewed one
    assert store.queue.claim("w2", lease_seconds=10) is None
    got = store.predictions.get(p.id)
    assert got.progress == 0.25
    assert got.progress_message == "step 5/20"
    assert got.lease_owner == "w1"


def test_expired_lease_is_reclaimed_and_the_old_worker_is_fenced_off(
    store: Store, make: Make, clock: Any
) -> None:
    p = store.queue.submit(make())
    store.queue.claim("w1", lease_seconds=10)
    clock.advance(11)
    second = store.queue.claim("w2", lease_seconds=10)
    assert second is not None
    assert second.id == p.id
    assert second.attempt == 2
    assert second.lease_owner == "w2"
    assert second.started_at == clock.start  # first start kept

    with pytest.raises(LeaseLost, match="attempt 2 held by w2"):
        store.queue.heartbeat(p.id, attempt=1, worker_id="w1", lease_seconds=10)
    with pytest.raises(LeaseLost):
        store.queue.succeed(
            p.id, attempt=1, worker_id="w1", output_key="x", inference_ms=1, nsfw=[]
        )
    with pytest.raises(LeaseLost):
        store.queue.fail(p.id, attempt=1, worker_id="w1", error="boom")
    with pytest.raises(LeaseLost):
        store.queue.acknowledge_cancel(p.id, attempt=1, worker_id="w1")
    # Same worker name, stale attempt: still fenced.
    with pytest.raises(LeaseLost):
        store.queue.heartbeat(p.id, attempt=1, worker_id="w2", lease_seconds=10)

    done = store.queue.succeed(
        p.id, attempt=2, worker_id="w2", output_key=f"{p.id}/2.mp4", inference_ms=1234, nsfw=[False]
    )
    assert done.status is Status.SUCCEEDED
    assert done.output_key == f"{p.id}/2.mp4"
    assert done.inference_ms == 1234
    assert done.nsfw == [False]
    assert done.progress == 1.0
    assert done.finished_at == clock.now
    with pytest.raises(LeaseLost):
        store.queue.fail(p.id, attempt=2, worker_id="w2", error="late")
    assert store.predictions.get(p.id).status is Status.SUCCEEDED


def test_worker_that_never_heartbeats_loses_the_job_until_attempts_run_out(
    store: Store, make: Make, clock: Any
) -> None:
    p = store.queue.submit(make(max_attempts=2))
    assert store.queue.claim("w1", lease_seconds=5) is not None
    clock.advance(6)
    again = store.queue.claim("w2", lease_seconds=5)
    assert again is not None
    assert again.attempt == 2
    assert store.queue.sweep() == 0  # lease still valid
    clock.advance(6)
    assert store.queue.claim("w3", lease_seconds=5) is None  # claim sweeps first
    failed = store.predictions.get(p.id)
    assert failed.status is Status.FAILED
    assert failed.error.startswith("worker lost the job 2 times")
    assert failed.finished_at == clock.now
    assert store.queue.sweep() == 0


def test_sweep_counts_and_cancels_orphans_whose_cancel_was_requested(
    store: Store, make: Make, clock: Any
) -> None:
    a = store.queue.submit(make(max_attempts=1))
    b = store.queue.submit(make())
    store.queue.claim("w", lease_seconds=5)
    store.queue.claim("w", lease_seconds=5)
    store.queue.cancel(b.id, owner="alice")
    clock.advance(6)
    assert store.queue.sweep() == 2
    assert store.predictions.get(a.id).status is Status.FAILED
    assert store.predictions.get(b.id).status is Status.CANCELLED


def test_fail_with_retry_requeues_in_place_until_attempts_run_out(store: Store, make: Make) -> None:
    p = store.queue.submit(make(max_attempts=2))
    later = store.queue.submit(make())
    store.queue.claim("w", lease_seconds=30)
    back = store.queue.fail(p.id, attempt=1, worker_id="w", error="engine process died", retry=True)
    assert back.status is Status.QUEUED
    assert back.lease_owner is None
    assert "engine process died" in back.progress_message
    # Keeps its place ahead of later submits.
    assert store.predictions.get_placed(p.id, owner=p.owner)[1] == 0
    assert store.predictions.get_placed(later.id, owner=later.owner)[1] == 1
    again = store.queue.claim("w", lease_seconds=30)
    assert again is not None
    assert again.id == p.id
    assert again.attempt == 2
    final = store.queue.fail(
        p.id, attempt=2, worker_id="w", error="engine process died", retry=True
    )
    assert final.status is Status.FAILED
    assert final.error == "engine process died"


def test_fail_without_retry_is_final(store: Store, make: Make) -> None:
    p = store.queue.submit(make())
    store.queue.claim("w", lease_seconds=30)
    failed = store.queue.fail(p.id, attempt=1, worker_id="w", error="prompt: too long")
    assert failed.status is Status.FAILED
    assert failed.error == "prompt: too long"
    assert store.queue.claim("w", lease_seconds=30) is None


def test_retry_is_not_taken_when_cancel_was_requested(store: Store, make: Make) -> None:
    p = store.queue.submit(make())
    store.queue.claim("w", lease_seconds=30)
    store.queue.cancel(p.id, owner="alice")
    failed = store.queue.fail(p.id, attempt=1, worker_id="w", error="crash", retry=True)
    assert failed.status is Status.FAILED

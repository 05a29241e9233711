from __future__ import annotations

from collections.abc import Callable

from i2v.domain.prediction import Prediction
from i2v.domain.status import Status
from i2v.store import CancelKind, Store


def test_a_cancel_requested_before_succeed_wins(
    store: Store, make: Callable[..., Prediction]
) -> None:
    p = store.queue.submit(make())
    job = store.queue.claim("w1", lease_seconds=30)
    assert job is not None
    assert store.queue.cancel(p.id, owner=p.owner).kind is CancelKind.CANCEL_REQUESTED
    done = store.queue.succeed(
        p.id, attempt=job.attempt, worker_id="w1", output_key="k", inference_ms=5, nsfw=[False]
    )
    assert done.status is Status.CANCELLED
    assert store.predictions.get(p.id).status is Status.CANCELLED
    assert store.predictions.get(p.id).output_key is None


def test_succeed_without_a_cancel_succeeds(store: Store, make: Callable[..., Prediction]) -> None:
    p = store.queue.submit(make())
    job = store.queue.claim("w1", lease_seconds=30)
    assert job is not None
    done = store.queue.succeed(
        p.id, attempt=job.attempt, worker_id="w1", output_key="k", inference_ms=5, nsfw=[False]
    )
    assert done.status is Status.SUCCEEDED
    assert done.output_key == "k"

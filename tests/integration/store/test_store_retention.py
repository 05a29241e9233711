"""Retention: the sweeper deletes the media of predictions finished longer ago than the
retention, and unused uploads after a day, from a local folder and from S3, then marks the
rows; an unfinished prediction keeps its input however long it waits. The clock is ours."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from i2v.domain.prediction import Prediction
from i2v.domain.retention import Retention
from i2v.storage import LocalStorage, S3Storage, Storage
from i2v.storage.keys import input_key, output_key, upload_key
from i2v.store import Store
from i2v.worker import sweeper as sweeper_module
from i2v.worker.sweeper import Sweeper, Swept
from jobs import job_spec
from s3server import S3Server

if TYPE_CHECKING:
    from conftest import FakeClock  # the store tier's; a name only here

Make = Callable[..., Prediction]
HOUR = 3600.0


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "local":
        yield LocalStorage(tmp_path / "media")
        return
    server: S3Server = request.getfixturevalue("s3_server")
    yield S3Storage(server.location(server.new_bucket(), prefix="media"))


def _with_input(storage: Storage, make: Make, **fields: object) -> Prediction:
    p = make(**fields)
    p = make(id=p.id, spec=job_spec(image_key=input_key(p.id, ".png")), **fields)
    storage.put_bytes(p.spec.image_key, b"png")
    return p


def _render(store: Store, storage: Storage, worker: str = "w") -> Prediction:
    job = store.queue.claim(worker, lease_seconds=60)
    assert job is not None
    key = output_key(job.id, job.attempt)
    storage.put_bytes(key, b"mp4")
    return store.queue.succeed(
        job.id, attempt=job.attempt, worker_id=worker, output_key=key, inference_ms=1, nsfw=[]
    )


def test_media_expire_after_the_retention_and_the_row_says_so(
    store: Store, storage: Storage, clock: FakeClock, make: Make
) -> None:
    retention = Retention(hours=1.5, upload_hours=24)
    sweeper = Sweeper(store, storage, retention, every_s=60, now=clock)
    done = _with_input(storage, make)
    waiting = _with_input(storage, make, owner="bob")
    store.queue.submit(done)
    done = _render(store, storage)
    store.queue.submit(waiting)
    clock.advance(1.5 * HOUR - 1)
    assert sweeper.sweep().predictions == 0
    assert storage.exists(done.output_key or "")
    clock.advance(2)
    swept = sweeper.sweep()
    assert swept.predictions == 1
    assert not storage.exists(done.output_key or "")
    assert not storage.exists(done.spec.image_key)
    after = store.predictions.get(done.id)
    assert after.expired_at == clock.now
    assert retention.expires_at(after) is not None
    assert retention.expires_at(after) < clock.now
    # Queued for days: its input stays.
    clock.advance(100 * HOUR)
    assert sweeper.sweep().predictions == 0
    assert storage.exists(waiting.spec.image_key)
    assert store.predictions.get(waiting.id).expired_at is None


def test_zero_keeps_media_forever(
    store: Store, storage: Storage, clock: FakeClock, make: Make
) -> None:
    sweeper = Sweeper(store, storage, Retention(hours=0), every_s=60, now=clock)
    store.queue.submit(_with_input(storage, make))
    done = _render(store, storage)
    clock.advance(10_000 * HOUR)
    assert sweeper.sweep().predictions == 0
    assert storage.exists(done.output_key or "")


def test_unused_uploads_expire_after_a_day(
    store: Store, storage: Storage, clock: FakeClock
) -> None:
    sweeper = Sweeper(store, storage, Retention(hours=1, upload_hours=24), every_s=60, now=clock)
    old, new = upload_key("old.png"), upload_key("new.png")
    storage.put_bytes(old, b"x")
    store.uploads.record(old, owner="alice", size=1, written=True, quota=None, field="file")
    clock.advance(12 * HOUR)
    storage.put_bytes(new, b"x")
    store.uploads.record(new, owner="alice", size=1, written=True, quota=None, field="file")
    clock.advance(12 * HOUR + 1)
    assert sweeper.sweep().uploads == 1
    assert not storage.exists(old)
    assert storage.exists(new)


def test_sweeps_at_most_every_interval(store: Store, storage: Storage, clock: FakeClock) -> None:
    ticks = iter([0.0, 10.0, 59.0, 61.0, 62.0])
    sweeper = Sweeper(
        store, storage, Retention(), every_s=60, now=clock, monotonic=lambda: next(ticks)
    )
    assert [sweeper.maybe_sweep() is not None for _ in range(5)] == [
        True,
        False,
        False,
        True,
        False,
    ]


def test_a_backlog_is_swept_a_time_budget_at_a_time_between_claims(
    store: Store,
    storage: Storage,
    clock: FakeClock,
    make: Make,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sweeper_module, "BATCH", 2)
    for _ in range(3):
        store.queue.submit(_with_input(storage, make))
        _render(store, storage)
    # a pass reads the clock when it starts and after each full batch
    ticks = iter([0.0, 6.0, 7.0])
    sweeper = Sweeper(
        store, storage, Retention(hours=1), every_s=60, now=clock, monotonic=lambda: next(ticks)
    )
    clock.advance(2 * HOUR)

    first = sweeper.maybe_sweep()  # one batch of 2, and at 6 s it is past its 5 s budget
    assert first == Swept(predictions=2, uploads=0, more=True)
    second = sweeper.maybe_sweep()  # at 7 s, not 60 s later: the backlog goes on at once
    assert second == Swept(predictions=1, uploads=0, more=False)

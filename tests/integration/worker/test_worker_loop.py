"""The worker loop on a real SQLite store and local storage, with the fake engine."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from i2v.domain.errors import DatabaseUnavailable, StorageUnavailable
from i2v.domain.prediction import Prediction
from i2v.domain.status import Status
from i2v.engines import registry
from i2v.storage import LocalStorage
from i2v.store import Store
from i2v.worker.loop import Worker, WorkerConfig
from jobs import job_spec
from photos import photo_bytes


def submit(store: Store, storage: LocalStorage) -> Prediction:
    pid = uuid.uuid4().hex
    storage.put_bytes(f"inputs/{pid}.jpg", photo_bytes())
    return store.queue.submit(
        Prediction(
            id=pid,
            owner="o",
            model="m",
            engine="fake",
            status=Status.QUEUED,
            spec=job_spec(image_key=f"inputs/{pid}.jpg", prompt="p", seed=1),
            input={},
            created_at=datetime.now(UTC),
        )
    )


def wait_terminal(store: Store, pid: str) -> Prediction:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        p = store.predictions.get(pid)
        if p.is_terminal:
            return p
        time.sleep(0.02)
    raise AssertionError(pid)


def test_the_loop_outlives_database_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    storage = LocalStorage(tmp_path / "media")
    worker = Worker(
        store,
        storage,
        registry.create,
        WorkerConfig(lease_seconds=30, heartbeat_seconds=0.2, poll_seconds=0.05),
    )
    real_claim = store.queue.claim
    failures = []

    def flaky_claim(*args: Any, **kwargs: Any) -> Prediction | None:
        if len(failures) < 3:  # a locked or restarting database, three times
            failures.append(1)
            raise sa.exc.OperationalError("claim", {}, Exception("database is locked"))
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(store.queue, "claim", flaky_claim)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        p = submit(store, storage)
        done = wait_terminal(store, p.id)
        assert done.status is Status.SUCCEEDED
        assert storage.exists(done.output_key or "")
        assert len(failures) == 3
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(timeout=10)
        store.close()


class FlakyStorage(LocalStorage):
    """Local storage whose first `failures` puts of a file fail as an S3 outage would."""

    def __init__(self, root: Path, failures: int) -> None:
        super().__init__(root)
        self.failures = failures
        self.tries = 0

    def put_file(self, key: str, path: Path) -> None:
        self.tries += 1
        if self.tries <= self.failures:
            raise StorageUnavailable(f"object storage did not answer (try {self.tries})")
        super().put_file(key, path)


@pytest.mark.parametrize(("failures", "status", "attempt"), [(2, Status.SUCCEEDED, 1)])
def test_a_short_storage_outage_does_not_spend_an_attempt(
    tmp_path: Path, failures: int, status: Status, attempt: int
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    storage = FlakyStorage(tmp_path / "media", failures)
    config = WorkerConfig(
        lease_seconds=30, heartbeat_seconds=0.2, poll_seconds=0.05, storage_retry_waits=(0, 0, 0)
    )
    p = submit(store, storage)
    Worker(store, storage, registry.create, config).run_once()
    done = store.predictions.get(p.id)
    assert (done.status, done.attempt) == (status, attempt)
    assert storage.tries == failures + 1
    store.close()


def test_an_outage_longer_than_the_retries_returns_the_job_for_another_attempt(
    tmp_path: Path,
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    storage = FlakyStorage(tmp_path / "media", failures=10)
    config = WorkerConfig(
        lease_seconds=30, heartbeat_seconds=0.2, poll_seconds=0.05, storage_retry_waits=(0, 0)
    )
    p = submit(store, storage)
    Worker(store, storage, registry.create, config).run_once()
    done = store.predictions.get(p.id)
    assert (done.status, done.attempt, storage.tries) == (Status.QUEUED, 1, 3)
    store.close()


class SlowFlakyStorage(FlakyStorage):
    """Each failure takes 0.2 s, as an S3 client's own retries of one call do (15 s)."""

    def put_file(self, key: str, path: Path) -> None:
        if self.tries < self.failures:
            time.sleep(0.2)
        super().put_file(key, path)


def test_storage_retries_stop_at_their_deadline_however_slow_each_call(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    storage = SlowFlakyStorage(tmp_path / "media", failures=10)
    config = WorkerConfig(
        lease_seconds=30,
        heartbeat_seconds=0.2,
        poll_seconds=0.05,
        storage_retry_waits=(0, 0, 0, 0, 0),
        storage_retry_seconds=0.3,
    )
    p = submit(store, storage)
    Worker(store, storage, registry.create, config).run_once()
    done = store.predictions.get(p.id)
    # fails at 0.2 s (tried again: before 0.3 s), fails at 0.4 s (past it: the attempt ends)
    assert (done.status, done.attempt, storage.tries) == (Status.QUEUED, 1, 2)
    store.close()


def test_a_database_outage_leaves_the_job_to_its_lease(tmp_path: Path) -> None:
    """Neither failed nor finished: the row still says running under this attempt, and
    the lease's expiry will return it (nothing is recorded while the database is down)."""
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    storage = LocalStorage(tmp_path / "media")
    p = submit(store, storage)
    worker = Worker(
        store,
        storage,
        registry.create,
        WorkerConfig(lease_seconds=30, heartbeat_seconds=0.2, poll_seconds=0.05),
    )
    claimed = store.queue.claim(worker.worker_id, lease_seconds=30)
    assert claimed is not None

    def down(*args: Any, **kwargs: Any) -> Prediction:
        raise DatabaseUnavailable("the database did not answer: connection refused")

    failed: list[str] = []
    real_fail = store.queue.fail
    store.queue.succeed = down  # type: ignore[method-assign]
    store.queue.fail = lambda *a, **k: failed.append("fail") or real_fail(*a, **k)  # type: ignore[method-assign]
    worker.process(claimed)
    row = store.predictions.get(p.id)
    assert (row.status, row.attempt, failed) == (Status.RUNNING, 1, [])
    store.close()


def test_the_database_layer_names_an_outage(tmp_path: Path) -> None:
    """What the store raises when its database is gone: the domain's error, not the driver's."""
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    (tmp_path / "db.sqlite").unlink()
    (tmp_path / "db.sqlite").mkdir()  # a folder where the file was: sqlite cannot open it
    store.database.engine.dispose()
    store.database.reader.dispose()
    with pytest.raises(DatabaseUnavailable, match="did not answer"):
        store.predictions.get("x")
    store.close()

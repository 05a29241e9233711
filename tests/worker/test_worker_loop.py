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

from i2v.domain.prediction import Prediction
from i2v.domain.status import Status
from i2v.engines import registry
from i2v.storage import LocalStorage
from i2v.store import Store
from i2v.worker.loop import Worker, WorkerConfig
from photos import photo_bytes


def submit(store: Store, storage: LocalStorage) -> Prediction:
    pid = uuid.uuid4().hex
    storage.put_bytes(f"inputs/{pid}.jpg", photo_bytes())
    params: dict[str, Any] = {
        "prompt": "p",
        "seed": 1,
        "frames": 9,
        "fps": 24,
        "width": 64,
        "height": 48,
        "image_key": f"inputs/{pid}.jpg",
        "route_options": {},
        "engine_options": {},
    }
    return store.submit(
        Prediction(
            id=pid,
            owner="o",
            model="m",
            engine="fake",
            status=Status.QUEUED,
            params=params,
            input={},
            created_at=datetime.now(UTC),
        )
    )


def wait_terminal(store: Store, pid: str) -> Prediction:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        p = store.get(pid)
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
    real_claim = store.claim
    failures = []

    def flaky_claim(*args: Any, **kwargs: Any) -> Prediction | None:
        if len(failures) < 3:  # a locked or restarting database, three times
            failures.append(1)
            raise sa.exc.OperationalError("claim", {}, Exception("database is locked"))
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(store, "claim", flaky_claim)
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

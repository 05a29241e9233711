from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from i2v.domain.prediction import Prediction
from i2v.domain.status import Status
from i2v.store import Store
from jobs import job_spec
from postgres import postgres_database

T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand, so lease expiry needs no sleeping."""

    def __init__(self, now: datetime = T0) -> None:
        self.start = now
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make_prediction(owner: str = "alice", engine: str = "motion", **fields: Any) -> Prediction:
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "owner": owner,
        "model": "bytedance/dreamina-v3.0/image-to-video-1080p",
        "engine": engine,
        "status": Status.QUEUED,
        "spec": job_spec(),
        "input": {"prompt": "a cat", "image": "https://example.com/cat.png"},
        "created_at": T0,
    }
    values.update(fields)
    return Prediction(**values)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'i2v.db'}"
        return
    server: str | None = request.getfixturevalue("postgres_server")
    if server is None:
        pytest.skip("PostgreSQL not available here (needs initdb, pg_ctl and psycopg)")
    with postgres_database(server) as url:
        yield url


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[Store]:
    with Store.open(db_url, clock=clock) as s:
        yield s


@pytest.fixture
def make() -> Callable[..., Prediction]:
    """Builds a new prediction (random id, owner alice, engine motion, created at T0)."""
    return make_prediction

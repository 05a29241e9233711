from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from i2v.domain.prediction import Prediction
from i2v.domain.status import Status
from i2v.store import Store

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
        "params": {"prompt": "a cat", "seed": 7, "frames": 121},
        "input": {"prompt": "a cat", "image": "https://example.com/cat.png"},
        "created_at": T0,
    }
    values.update(fields)
    return Prediction(**values)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _pg_tool(name: str) -> str | None:
    """On PATH, or where Debian's postgresql package puts it (not on PATH)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str | None]:
    """A throwaway PostgreSQL cluster (unix socket only), or None where none can be started.

    Needs `initdb`/`pg_ctl` and psycopg; as root, runs them as the `postgres` user.
    """
    initdb, pg_ctl = _pg_tool("initdb"), _pg_tool("pg_ctl")
    if not (initdb and pg_ctl and importlib.util.find_spec("psycopg")):
        yield None
        return
    as_user: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="i2v-pg-"))  # short: socket paths are limited
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            yield None
            return
        os.chown(base, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data = base / "data"
    options = f"-k {base} -c listen_addresses='' -c fsync=off -c max_connections=200"
    try:
        subprocess.run(
            [*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
            check=True,
            capture_output=True,
        )
        log = str(base / "log")
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", log, "-w", "start"],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError):
        shutil.rmtree(base, ignore_errors=True)
        yield None
        return
    try:
        yield f"postgresql+psycopg://postgres@/{{database}}?host={base}"
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'i2v.db'}"
        return
    server: str | None = request.getfixturevalue("postgres_server")
    if server is None:
        pytest.skip("PostgreSQL not available here (needs initdb, pg_ctl and psycopg)")
    import psycopg

    name = f"t_{uuid.uuid4().hex}"
    admin = server.format(database="postgres").replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.format(database=name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[Store]:
    with Store.open(db_url, clock=clock) as s:
        yield s


@pytest.fixture
def make() -> Callable[..., Prediction]:
    """Builds a new prediction (random id, owner alice, engine motion, created at T0)."""
    return make_prediction

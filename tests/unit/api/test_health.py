"""`/healthz` and `/readyz`: no key needed; readiness names what is wrong."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from inprocess import InProcess


def test_ready_and_alive_without_a_key(start_api: Callable[..., InProcess]) -> None:
    client = start_api(workers=0).client(key=None)
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "problems": []}


def test_an_old_schema_is_not_ready(start_api: Callable[..., InProcess]) -> None:
    api = start_api(workers=0)
    with api.store.database.write() as conn:
        head = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
    r = api.client(key=None).get("/readyz")
    assert r.status_code == 503
    (problem,) = r.json()["problems"]
    assert problem.startswith(f"database: schema at revision 0001, this code needs {head}")
    assert api.client(key=None).get("/healthz").status_code == 200


def test_an_unreachable_database_is_not_ready(
    start_api: Callable[..., InProcess], tmp_path: Path
) -> None:
    api = start_api(workers=0)
    # A SQLite file in a folder that does not exist: every connection attempt fails.
    api.store.database.reader = sa.create_engine(f"sqlite:///{tmp_path / 'gone' / 'i2v.db'}")
    r = api.client(key=None).get("/readyz")
    assert r.status_code == 503
    (problem,) = r.json()["problems"]
    assert problem.startswith("database: does not answer (the database did not answer: ")
    assert "unable to open database file" in problem
    assert api.client(key=None).get("/healthz").status_code == 200

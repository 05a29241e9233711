from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from i2v.domain.prediction import Prediction
from i2v.domain.status import Status
from i2v.store import Store, migrate
from i2v.store.tables import metadata

Make = Callable[..., Prediction]

# The parameters of a job as the first release stored them (before the versioned JobSpec).
FIRST_RELEASE_PARAMS = {
    "image_key": "inputs/old.png",
    "prompt": "a cat",
    "seed": 7,
    "width": 640,
    "height": 480,
    "frames": 9,
    "route_options": {},
    "engine_options": {},
}


def test_fresh_file_is_migrated_to_head_with_wal(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "i2v.db"  # missing folders are created
    Store.open(f"sqlite:///{path}").close()
    con = sqlite3.connect(path)
    try:
        assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [("0005",)]
        assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        con.close()
    assert {"predictions", "api_keys", "queue_owners", "uploads", "alembic_version"} <= tables
    assert migrate.head_revision() == "0005"


def test_a_database_made_by_the_first_release_is_upgraded_with_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'i2v.db'}"
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            command.upgrade(migrate.alembic_config(conn), "0001")
            conn.exec_driver_sql(
                "INSERT INTO predictions (id, owner, model, engine, status, params, input, options,"
                " created_at, updated_at, attempt, max_attempts, progress, progress_message,"
                " error, cancel_requested, nsfw) VALUES ('old', 'alice', 'm', 'motion',"
                f" 'succeeded', '{json.dumps(FIRST_RELEASE_PARAMS)}', '{{}}', '{{}}',"
                " '2026-01-01 00:00:00', '2026-01-01 00:00:00',"
                " 1, 3, 1.0, '', '', 0, '[]')"
            )
    finally:
        engine.dispose()
    with Store.open(url) as store:
        old = store.predictions.get("old")
    assert old.status is Status.SUCCEEDED
    assert old.webhook is None
    assert old.spec.image_key == "inputs/old.png"
    assert old.spec.fps == 24  # the first release rendered every job at 24 fps


def test_second_open_is_a_no_op_and_keeps_data(db_url: str, make: Make) -> None:
    with Store.open(db_url) as first:
        p = first.queue.submit(make())
    with Store.open(db_url) as second:
        assert second.predictions.get(p.id) == p


def test_migrations_create_exactly_the_declared_schema(db_url: str) -> None:
    Store.open(db_url).close()
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_store_opens_from_the_installed_package_in_another_folder(tmp_path: Path) -> None:
    code = (
        "from i2v.store import Store\n"
        "import i2v.store.migrate as m\n"
        "assert (m.MIGRATIONS / 'env.py').is_file(), m.MIGRATIONS\n"
        "Store.open('sqlite:///here.db').close()\n"
        "print(m.head_revision())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == migrate.head_revision()
    assert (tmp_path / "here.db").is_file()

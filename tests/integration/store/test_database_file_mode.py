"""The SQLite file (inputs, webhook URLs) and its WAL files are owner-only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from i2v.store.database import Database


def test_a_new_sqlite_file_is_created_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a usual umask would leave a plain create world-readable
    try:
        db = Database.open(f"sqlite:///{tmp_path / 'sub' / 'i2v.db'}")
        with db.write() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    finally:
        os.umask(old)
    try:
        for path in (tmp_path / "sub").iterdir():  # i2v.db, i2v.db-wal, i2v.db-shm
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    finally:
        db.close()

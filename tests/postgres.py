"""A throwaway PostgreSQL cluster for tests (unix socket only, no TCP)."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _pg_tool(name: str) -> str | None:
    """On PATH, or where Debian's postgresql package puts it (not on PATH)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


def postgres_cluster() -> Iterator[str | None]:
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
    try:
        subprocess.run(
            [*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
            check=True,
            capture_output=True,
        )
        subprocess.run(_start(as_user, pg_ctl, base), check=True, capture_output=True)
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


def _start(as_user: list[str], pg_ctl: str, base: Path) -> list[str]:
    """The command that starts the cluster in `base` (its data, socket and log)."""
    options = f"-k {base} -c listen_addresses='' -c fsync=off -c max_connections=200"
    log = str(base / "log")
    return [*as_user, pg_ctl, "-D", str(base / "data"), "-o", options, "-l", log, "-w", "start"]


@contextmanager
def postgres_stopped(server: str) -> Iterator[None]:
    """The cluster of `server` (a `postgres_cluster` URL) stopped, and started again after."""
    pg_ctl = _pg_tool("pg_ctl")
    assert pg_ctl is not None
    base = Path(server.rpartition("host=")[2])
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    stop = [*as_user, pg_ctl, "-D", str(base / "data"), "-m", "fast", "-w", "stop"]
    subprocess.run(stop, check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(_start(as_user, pg_ctl, base), check=True, capture_output=True)


@contextmanager
def postgres_database(server: str) -> Iterator[str]:
    """A new, empty database in the cluster; dropped afterwards."""
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

"""Fixtures shared by every test tier."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from photos import photo_bytes
from postgres import postgres_cluster, postgres_database
from s3server import S3Server, s3_cluster


@pytest.fixture
def photo() -> bytes:
    return photo_bytes()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str | None]:
    """URL template (`{database}`) of a throwaway PostgreSQL cluster, or None where none
    can be started (no initdb/pg_ctl or psycopg)."""
    yield from postgres_cluster()


@pytest.fixture
def postgres_url(postgres_server: str | None) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (skipped where no cluster can be started)."""
    if postgres_server is None:
        pytest.skip("PostgreSQL not available here (needs initdb, pg_ctl and psycopg)")
    with postgres_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A throwaway S3-compatible server (SeaweedFS) on loopback, for the whole session."""
    yield from s3_cluster()


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """A command run in-process (`i2v serve` in a CliRunner) points the root logger at its
    own stderr, which the runner closes after the command: later threads logging there
    print "I/O operation on closed file". Each test removes the stream handlers it added
    (pytest's own capture handlers are subclasses it manages per phase) and the level."""
    root = logging.getLogger()
    before, level = set(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler and handler not in before:
            root.removeHandler(handler)
    root.setLevel(level)

"""Fixtures shared by every test tier."""

from __future__ import annotations

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

"""The schema: one `predictions` table that is also the job queue, `api_keys`, the
queue's per-owner turns (`queue_owners`) and the uploads awaiting expiry (`uploads`).

The Alembic revisions in `migrations/versions` create exactly this (a test compares
them); change both together.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL keeps `timestamptz`; SQLite has no time zones, so the value is stored as
    naive UTC text (microseconds kept, text order = time order) and marked UTC on load.
    Naive datetimes are refused on the way in: they are always a bug here.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"datetime must be timezone-aware, got naive {value.isoformat()}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def at(moment: datetime) -> sa.BindParameter[datetime]:
    """`moment` as a bound value stored the way UtcDateTime columns store it."""
    return sa.literal(moment, UtcDateTime())


def json_type() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def seq_type() -> sa.types.TypeEngine[int]:
    # SQLite makes only "INTEGER PRIMARY KEY" an alias of the rowid (and AUTOINCREMENT
    # keeps it monotonic across deletes); PostgreSQL gets a 64-bit identity.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


metadata = sa.MetaData()

# Rows that may owe a webhook; the partial index keeps the outbox scan off everything else.
WEBHOOK_OWED = "webhook IS NOT NULL AND webhook_done_at IS NULL"
# Finished rows whose media retention has not deleted yet.
UNEXPIRED = "finished_at IS NOT NULL AND expired_at IS NULL"

predictions = sa.Table(
    "predictions",
    metadata,
    # FIFO order and queue position; never reused (sqlite_autoincrement).
    sa.Column("seq", seq_type(), primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("model", sa.String(255), nullable=False),
    sa.Column("engine", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("params", json_type(), nullable=False),
    sa.Column("input", json_type(), nullable=False),
    sa.Column("options", json_type(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=True),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("max_attempts", sa.Integer(), nullable=False),
    sa.Column("lease_owner", sa.String(255), nullable=True),
    sa.Column("lease_until", UtcDateTime(), nullable=True),
    sa.Column("progress", sa.Float(), nullable=False),
    sa.Column("progress_message", sa.Text(), nullable=False),
    sa.Column("output_key", sa.String(1024), nullable=True),
    sa.Column("error", sa.Text(), nullable=False),
    sa.Column("inference_ms", sa.Integer(), nullable=True),
    sa.Column("cancel_requested", sa.Boolean(), nullable=False),
    sa.Column("nsfw", json_type(), nullable=False),
    # The row is also the webhook outbox: a finished row with a webhook and no
    # webhook_done_at is a delivery owed, written in the same statement that finished it.
    sa.Column("webhook", sa.String(2048), nullable=True),
    sa.Column("webhook_attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("webhook_next_at", UtcDateTime(), nullable=True),  # not before; a lease when sending
    sa.Column("webhook_done_at", UtcDateTime(), nullable=True),  # delivered, or given up
    sa.Column("webhook_error", sa.Text(), nullable=False, server_default=""),
    # Idempotent submits: the client's Idempotency-Key, unique per owner, and the hash
    # of the body it came with (i2v.domain.idempotency).
    sa.Column("idempotency_key", sa.String(255), nullable=True),
    sa.Column("request_hash", sa.String(64), nullable=True),
    sa.Column("expired_at", UtcDateTime(), nullable=True),  # media deleted by retention
    sa.Index("ix_predictions_status_seq", "status", "seq"),
    # Fair claims: an owner's oldest queued prediction, and its queued/running counts.
    sa.Index("ix_predictions_owner_status_seq", "owner", "status", "seq"),
    sa.Index("ix_predictions_owner_idempotency", "owner", "idempotency_key", unique=True),
    # Retention: finished rows whose media are still kept, by when they finished.
    sa.Index(
        "ix_predictions_unexpired",
        "finished_at",
        sqlite_where=sa.text(UNEXPIRED),
        postgresql_where=sa.text(UNEXPIRED),
    ),
    sa.Index("ix_predictions_owner_created", "owner", "created_at"),
    sa.Index(
        "ix_predictions_webhook_owed",
        "webhook_next_at",
        sqlite_where=sa.text(WEBHOOK_OWED),
        postgresql_where=sa.text(WEBHOOK_OWED),
    ),
    sqlite_autoincrement=True,
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_hash", sa.String(128), primary_key=True),  # sha256 hex of the key
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("prefix", sa.String(32), nullable=False),  # first characters, for people
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
    # Limits of this key (i2v.domain.limits); NULL: the server-wide default.
    sa.Column("max_queued", sa.Integer(), nullable=True),
    sa.Column("max_running", sa.Integer(), nullable=True),
    sa.Column("rate_per_minute", sa.Integer(), nullable=True),
    sa.Column("weight", sa.Float(), nullable=True),
    # May see the operator page (/admin): every owner's queue, runs and failures.
    sa.Column("admin", sa.Boolean(), nullable=False, server_default=sa.false()),
)

# One row per owner that ever submitted: its place in the round-robin over owners.
# `turn` is a virtual time: the claim serves the owner with queued work and the lowest
# turn, then adds 1/weight to it (stride scheduling). `served_turn` is the turn it was last
# served at; the highest of them is "now" in virtual time, where an owner coming back
# after a pause starts, so it cannot claim a burst for the time it was away.
queue_owners = sa.Table(
    "queue_owners",
    metadata,
    sa.Column("owner", sa.String(128), primary_key=True),
    sa.Column("turn", sa.Float(), nullable=False),
    sa.Column("served_turn", sa.Float(), nullable=False),
    sa.Column("weight", sa.Float(), nullable=False),
    sa.Column("max_running", sa.Integer(), nullable=True),  # copied from its limits at submit
    sa.Column("served_at", UtcDateTime(), nullable=True),
)

# Media uploads, until they expire (the Storage protocol cannot list a prefix): whose each
# is, for the per-key quota and deletes, and whether its one write happened (i2v.store.uploads).
uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("key", sa.String(1024), primary_key=True),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    # Bytes stored, or declared by a ticket whose PUT has not come: both count to the quota.
    sa.Column("size", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("written_at", UtcDateTime(), nullable=True),  # NULL: a ticket awaiting its PUT
    sa.Column("used_at", UtcDateTime(), nullable=True),  # a submit used it last then
    sa.Index("ix_uploads_created", "created_at"),
    sa.Index("ix_uploads_owner", "owner"),
)

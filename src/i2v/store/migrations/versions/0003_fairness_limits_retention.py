"""Fair share, limits per key, idempotent submits, retention.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from i2v.store.tables import UNEXPIRED, UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(255), nullable=True))
        batch.add_column(sa.Column("request_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("expired_at", UtcDateTime(), nullable=True))
    op.create_index("ix_predictions_owner_status_seq", "predictions", ["owner", "status", "seq"])
    op.create_index(
        "ix_predictions_owner_idempotency",
        "predictions",
        ["owner", "idempotency_key"],
        unique=True,
    )
    op.create_index(
        "ix_predictions_unexpired",
        "predictions",
        ["finished_at"],
        sqlite_where=sa.text(UNEXPIRED),
        postgresql_where=sa.text(UNEXPIRED),
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("max_queued", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("max_running", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("rate_per_minute", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("weight", sa.Float(), nullable=True))
    op.create_table(
        "queue_owners",
        sa.Column("owner", sa.String(128), primary_key=True),
        sa.Column("turn", sa.Float(), nullable=False),
        sa.Column("served_turn", sa.Float(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("max_running", sa.Integer(), nullable=True),
        sa.Column("served_at", UtcDateTime(), nullable=True),
    )
    # Owners with work queued before this revision start level.
    op.execute(
        "INSERT INTO queue_owners (owner, turn, served_turn, weight)"
        " SELECT DISTINCT owner, 0, 0, 1 FROM predictions"
    )
    op.create_table(
        "uploads",
        sa.Column("key", sa.String(1024), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_uploads_created", "uploads", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_uploads_created", table_name="uploads")
    op.drop_table("uploads")
    op.drop_table("queue_owners")
    with op.batch_alter_table("api_keys") as batch:
        for column in ("weight", "rate_per_minute", "max_running", "max_queued"):
            batch.drop_column(column)
    op.drop_index("ix_predictions_unexpired", table_name="predictions")
    op.drop_index("ix_predictions_owner_idempotency", table_name="predictions")
    op.drop_index("ix_predictions_owner_status_seq", table_name="predictions")
    with op.batch_alter_table("predictions") as batch:
        for column in ("expired_at", "request_hash", "idempotency_key"):
            batch.drop_column(column)

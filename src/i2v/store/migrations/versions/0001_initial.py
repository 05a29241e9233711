"""Initial schema: predictions (the job queue) and api_keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from i2v.store.tables import UtcDateTime, json_type, seq_type

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
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
        sqlite_autoincrement=True,
    )
    op.create_index("ix_predictions_status_seq", "predictions", ["status", "seq"])
    op.create_index("ix_predictions_owner_created", "predictions", ["owner", "created_at"])
    op.create_table(
        "api_keys",
        sa.Column("key_hash", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_index("ix_predictions_owner_created", table_name="predictions")
    op.drop_index("ix_predictions_status_seq", table_name="predictions")
    op.drop_table("predictions")

"""Webhooks: the predictions row doubles as the outbox of its webhook delivery.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from i2v.store.tables import WEBHOOK_OWED, UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("webhook", sa.String(2048), nullable=True))
        batch.add_column(
            sa.Column("webhook_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("webhook_next_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("webhook_done_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("webhook_error", sa.Text(), nullable=False, server_default=""))
    op.create_index(
        "ix_predictions_webhook_owed",
        "predictions",
        ["webhook_next_at"],
        sqlite_where=sa.text(WEBHOOK_OWED),
        postgresql_where=sa.text(WEBHOOK_OWED),
    )


def downgrade() -> None:
    op.drop_index("ix_predictions_webhook_owed", table_name="predictions")
    with op.batch_alter_table("predictions") as batch:
        for column in (
            "webhook_error",
            "webhook_done_at",
            "webhook_next_at",
            "webhook_attempts",
            "webhook",
        ):
            batch.drop_column(column)

"""Uploads owned and bounded: their size (for the per-key quota), their one write, their
last use.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from i2v.store.tables import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("size", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("written_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("used_at", UtcDateTime(), nullable=True))
    # Uploads made before this revision: their bytes were written (or never will be); either
    # way no PUT may write them now.
    op.execute("UPDATE uploads SET written_at = created_at")
    op.create_index("ix_uploads_owner", "uploads", ["owner"])


def downgrade() -> None:
    op.drop_index("ix_uploads_owner", table_name="uploads")
    with op.batch_alter_table("uploads") as batch:
        for column in ("used_at", "written_at", "size"):
            batch.drop_column(column)

"""feed log: the batches queued on NATS JetStream and what each became

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queued_batches",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("exchange_id", sa.Integer(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=300), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ingest_batch_id", sa.Integer(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["exchange_id"], ["exchanges.id"], name="fk_queued_batches_exchange_id_exchanges"
        ),
        sa.ForeignKeyConstraint(
            ["ingest_batch_id"],
            ["ingest_batches.id"],
            name="fk_queued_batches_ingest_batch_id_ingest_batches",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_queued_batches"),
        sa.UniqueConstraint(
            "exchange_id", "dedupe_key", name="uq_queued_batches_exchange_id_dedupe_key"
        ),
    )
    op.create_index("ix_queued_batches_status", "queued_batches", ["status", "settled_at"])


def downgrade() -> None:
    op.drop_index("ix_queued_batches_status", table_name="queued_batches")
    op.drop_table("queued_batches")

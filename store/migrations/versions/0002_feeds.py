"""feeds: FX rates, idempotency keys, trade revisions; held trades and batch archives

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "fx_rates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("cny_per_unit", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=True),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fx_rates")),
        sa.UniqueConstraint("date", "currency", name=op.f("uq_fx_rates_date_currency")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("id", BigId, nullable=False),
        sa.Column("exchange_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["exchange_id"],
            ["exchanges.id"],
            name=op.f("fk_idempotency_keys_exchange_id_exchanges"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["ingest_batches.id"],
            name=op.f("fk_idempotency_keys_batch_id_ingest_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("exchange_id", "key", name=op.f("uq_idempotency_keys_exchange_id_key")),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])
    op.create_table(
        "trade_revisions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("trade_pk", BigId, nullable=False),
        sa.Column("exchange_id", sa.Integer(), nullable=False),
        sa.Column("trade_id", sa.String(length=64), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("seq", BigId, nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("previous", sa.JSON(), nullable=False),
        sa.Column("revised_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["trade_pk"], ["trades.id"], name=op.f("fk_trade_revisions_trade_pk_trades")
        ),
        sa.ForeignKeyConstraint(
            ["exchange_id"], ["exchanges.id"], name=op.f("fk_trade_revisions_exchange_id_exchanges")
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["ingest_batches.id"],
            name=op.f("fk_trade_revisions_batch_id_ingest_batches"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trade_revisions")),
        sa.UniqueConstraint(
            "exchange_id",
            "trade_id",
            "content_hash",
            name=op.f("uq_trade_revisions_exchange_id_trade_id_content_hash"),
        ),
    )
    op.create_index("ix_trade_revisions_batch_id", "trade_revisions", ["batch_id"])

    with op.batch_alter_table("ingest_batches") as batch_op:
        batch_op.add_column(sa.Column("held", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("revised", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("rejections_by_reason", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("archive_path", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("format", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("first_row", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_ingest_batches_exchange_received", ["exchange_id", "received_at"])

    with op.batch_alter_table("trades") as batch_op:
        batch_op.alter_column("price", existing_type=sa.Float(), nullable=True)
        batch_op.add_column(sa.Column("adjustments", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("hold_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("revision", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("trades") as batch_op:
        batch_op.drop_column("revision")
        batch_op.drop_column("hold_reason")
        batch_op.drop_column("adjustments")
        batch_op.alter_column("price", existing_type=sa.Float(), nullable=False)
    with op.batch_alter_table("ingest_batches") as batch_op:
        batch_op.drop_index("ix_ingest_batches_exchange_received")
        batch_op.drop_column("first_row")
        batch_op.drop_column("format")
        batch_op.drop_column("archive_path")
        batch_op.drop_column("rejections_by_reason")
        batch_op.drop_column("revised")
        batch_op.drop_column("held")
    op.drop_index("ix_trade_revisions_batch_id", table_name="trade_revisions")
    op.drop_table("trade_revisions")
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_table("fx_rates")

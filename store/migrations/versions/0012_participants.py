"""participants: each trade's pseudonymous buyer and seller codes, the exchange's affiliated
flag, and the instant the server received it

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trades") as batch_op:
        batch_op.add_column(sa.Column("received_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("buyer", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("seller", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("affiliated", sa.Boolean(), nullable=True))
    # Trades stored before this revision were received with their batch.
    op.execute(
        "UPDATE trades SET received_at = (SELECT received_at FROM ingest_batches "
        "WHERE ingest_batches.id = trades.batch_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("trades") as batch_op:
        batch_op.drop_column("affiliated")
        batch_op.drop_column("seller")
        batch_op.drop_column("buyer")
        batch_op.drop_column("received_at")

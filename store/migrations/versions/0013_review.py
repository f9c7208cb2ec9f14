"""review: a flags column on every published value, and the alerts raised when a value
moves beyond the methodology's review threshold

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    for table in ("assessments", "index_values"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("flags", sa.String(length=64), nullable=True))
    op.create_table(
        "alerts",
        sa.Column("id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("vintage", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("previous_date", sa.Date(), nullable=False),
        sa.Column("previous_value", sa.Float(), nullable=False),
        sa.Column("move", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("methodology_version", sa.String(length=32), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alerts_raised_at", "alerts", ["raised_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_alerts_raised_at", table_name="alerts")
    op.drop_table("alerts")
    for table in ("index_values", "assessments"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("flags")

"""publication: correction notices, rate-limit counters, publication state, index values by time

Revision ID: 0004
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "corrections",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("index_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("old_vintage", sa.Integer(), nullable=False),
        sa.Column("new_vintage", sa.Integer(), nullable=False),
        sa.Column("old_value", sa.Float(), nullable=False),
        sa.Column("new_value", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["index_id"],
            ["index_definitions.id"],
            name=op.f("fk_corrections_index_id_index_definitions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corrections")),
    )
    op.create_index("ix_corrections_published_at", "corrections", ["published_at", "id"])
    op.create_index("ix_corrections_index_id_date", "corrections", ["index_id", "date"])
    op.create_table(
        "rate_limit_counters",
        sa.Column("bucket", sa.String(length=96), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "window_start", name=op.f("pk_rate_limit_counters")),
    )
    op.create_index("ix_index_values_published_at", "index_values", ["published_at", "id"])
    state = op.create_table(
        "publication_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publication_state")),
    )
    op.bulk_insert(state, [{"id": 1, "version": 0, "updated_at": None}])


def downgrade() -> None:
    op.drop_table("publication_state")
    op.drop_index("ix_index_values_published_at", table_name="index_values")
    op.drop_table("rate_limit_counters")
    op.drop_index("ix_corrections_index_id_date", table_name="corrections")
    op.drop_index("ix_corrections_published_at", table_name="corrections")
    op.drop_table("corrections")

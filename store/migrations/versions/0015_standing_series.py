"""standing series: each index's and commodity's standing values in one row, and an index
on (key, id) of the published values to tell whether that row is complete

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

KEYS = {"index_values": "index_id", "assessments": "commodity_id"}


def upgrade() -> None:
    op.create_table(
        "standing_series",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("max_id", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "key_id"),
    )
    for table, key in KEYS.items():
        op.create_index(f"ix_{table}_{key}_id", table, [key, "id"])


def downgrade() -> None:
    for table, key in KEYS.items():
        op.drop_index(f"ix_{table}_{key}_id", table_name=table)
    op.drop_table("standing_series")

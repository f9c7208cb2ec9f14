"""index start: each index records the base date its first published value rested on

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("index_definitions") as batch_op:
        batch_op.add_column(sa.Column("started_on", sa.Date(), nullable=True))
    # Indices published before this revision rested on the family's base date.
    op.execute(
        sa.text(
            "UPDATE index_definitions SET started_on = base_date WHERE EXISTS "
            "(SELECT 1 FROM index_values WHERE index_values.index_id = index_definitions.id)"
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("index_definitions") as batch_op:
        batch_op.drop_column("started_on")

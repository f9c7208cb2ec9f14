"""withdrawn values: an index value vintage and a correction's new value may be empty

A vintage with status ``withdrawn`` says its date is no longer a publication day; it
carries no value, and its correction notice has no new value.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("index_values") as batch_op:
        batch_op.alter_column("value", existing_type=sa.Float(), nullable=True)
    with op.batch_alter_table("corrections") as batch_op:
        batch_op.alter_column("new_value", existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("corrections") as batch_op:
        batch_op.alter_column("new_value", existing_type=sa.Float(), nullable=False)
    with op.batch_alter_table("index_values") as batch_op:
        batch_op.alter_column("value", existing_type=sa.Float(), nullable=False)

"""one door for changes: notices name their cause and whether they were forced; marks keep
their cause; normalising constants are versioned, never edited

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OLD_REASONS = {"cancel": "trade_cancelled", "amend": "trade_amended"}


def upgrade() -> None:
    with op.batch_alter_table("corrections") as batch_op:
        batch_op.add_column(sa.Column("cause", sa.String(length=1000), nullable=True))
        batch_op.add_column(
            sa.Column("forced", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("restatement_marks") as batch_op:
        batch_op.add_column(sa.Column("cause", sa.String(length=200), nullable=True))
    with op.batch_alter_table("audit_computations") as batch_op:
        batch_op.add_column(sa.Column("restating", sa.JSON(), nullable=True))
    marks = sa.table("restatement_marks", sa.column("reason", sa.String()))
    for old, new in OLD_REASONS.items():
        op.execute(marks.update().where(marks.c.reason == old).values(reason=new))
    with op.batch_alter_table("normalising_constants") as batch_op:
        batch_op.add_column(sa.Column("vintage", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint("uq_normalising_constants_index_id_effective_from", type_="unique")
        batch_op.create_unique_constraint(
            "uq_normalising_constants_index_id_effective_from_vintage",
            ["index_id", "effective_from", "vintage"],
        )
        batch_op.create_index(
            "ix_normalising_constants_current",
            ["index_id", "effective_from"],
            unique=True,
            sqlite_where=sa.text("superseded_at IS NULL"),
            postgresql_where=sa.text("superseded_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("normalising_constants") as batch_op:
        batch_op.drop_index("ix_normalising_constants_current")
        batch_op.drop_constraint(
            "uq_normalising_constants_index_id_effective_from_vintage", type_="unique"
        )
        batch_op.create_unique_constraint(
            "uq_normalising_constants_index_id_effective_from", ["index_id", "effective_from"]
        )
        batch_op.drop_column("superseded_at")
        batch_op.drop_column("vintage")
    marks = sa.table("restatement_marks", sa.column("reason", sa.String()))
    for old, new in OLD_REASONS.items():
        op.execute(marks.update().where(marks.c.reason == new).values(reason=old))
    with op.batch_alter_table("audit_computations") as batch_op:
        batch_op.drop_column("restating")
    with op.batch_alter_table("restatement_marks") as batch_op:
        batch_op.drop_column("cause")
    with op.batch_alter_table("corrections") as batch_op:
        batch_op.drop_column("forced")
        batch_op.drop_column("cause")

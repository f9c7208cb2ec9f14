"""methodology: weight sets, normalising constants, intraday values, daily OHLC;
suspended assessments carry no price

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CURRENT = sa.text("superseded_at IS NULL")


def _recreate_current_index(batch_op) -> None:
    # SQLite rebuilds the table in batch mode; the partial index is stated again explicitly.
    batch_op.drop_index("ix_assessments_current", sqlite_where=CURRENT, postgresql_where=CURRENT)
    batch_op.create_index(
        "ix_assessments_current",
        ["commodity_id", "date"],
        unique=True,
        sqlite_where=CURRENT,
        postgresql_where=CURRENT,
    )


def upgrade() -> None:
    op.create_table(
        "weight_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("methodology_version", sa.String(length=32), nullable=False),
        sa.Column("data_from", sa.Date(), nullable=False),
        sa.Column("data_to", sa.Date(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("announced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_weight_sets")),
        sa.UniqueConstraint("effective_from", name=op.f("uq_weight_sets_effective_from")),
    )
    op.create_table(
        "weight_set_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("weight_set_id", sa.Integer(), nullable=False),
        sa.Column("commodity_id", sa.Integer(), nullable=False),
        sa.Column("traded_value", sa.Float(), nullable=False),
        sa.Column("production_value", sa.Float(), nullable=False),
        sa.Column("traded_share", sa.Float(), nullable=False),
        sa.Column("production_share", sa.Float(), nullable=False),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["weight_set_id"],
            ["weight_sets.id"],
            name=op.f("fk_weight_set_members_weight_set_id_weight_sets"),
        ),
        sa.ForeignKeyConstraint(
            ["commodity_id"],
            ["commodities.id"],
            name=op.f("fk_weight_set_members_commodity_id_commodities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_weight_set_members")),
        sa.UniqueConstraint(
            "weight_set_id",
            "commodity_id",
            name=op.f("uq_weight_set_members_weight_set_id_commodity_id"),
        ),
    )
    op.create_table(
        "normalising_constants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("index_id", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("reference_date", sa.Date(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("methodology_version", sa.String(length=32), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["index_id"],
            ["index_definitions.id"],
            name=op.f("fk_normalising_constants_index_id_index_definitions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_normalising_constants")),
        sa.UniqueConstraint(
            "index_id",
            "effective_from",
            name=op.f("uq_normalising_constants_index_id_effective_from"),
        ),
    )
    op.create_table(
        "intraday_index_values",
        sa.Column("id", BigId, nullable=False),
        sa.Column("index_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["index_id"],
            ["index_definitions.id"],
            name=op.f("fk_intraday_index_values_index_id_index_definitions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intraday_index_values")),
        sa.UniqueConstraint(
            "index_id",
            "observed_at",
            name=op.f("uq_intraday_index_values_index_id_observed_at"),
        ),
    )
    op.create_index(
        "ix_intraday_index_values_index_id_date", "intraday_index_values", ["index_id", "date"]
    )
    op.create_table(
        "index_daily_ohlc",
        sa.Column("id", BigId, nullable=False),
        sa.Column("index_id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("open", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("close", sa.Float(), nullable=False),
        sa.Column("observations", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["index_id"],
            ["index_definitions.id"],
            name=op.f("fk_index_daily_ohlc_index_id_index_definitions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_daily_ohlc")),
        sa.UniqueConstraint("index_id", "date", name=op.f("uq_index_daily_ohlc_index_id_date")),
    )
    with op.batch_alter_table("assessments") as batch_op:
        for column in ("price", "high", "low"):
            batch_op.alter_column(column, existing_type=sa.Float(), nullable=True)
        _recreate_current_index(batch_op)


def downgrade() -> None:
    # Suspended assessments have no price and cannot survive the NOT NULL constraint.
    op.execute("DELETE FROM assessments WHERE price IS NULL OR high IS NULL OR low IS NULL")
    with op.batch_alter_table("assessments") as batch_op:
        for column in ("price", "high", "low"):
            batch_op.alter_column(column, existing_type=sa.Float(), nullable=False)
        _recreate_current_index(batch_op)
    op.drop_table("index_daily_ohlc")
    op.drop_index("ix_intraday_index_values_index_id_date", table_name="intraday_index_values")
    op.drop_table("intraday_index_values")
    op.drop_table("normalising_constants")
    op.drop_table("weight_set_members")
    op.drop_table("weight_sets")

"""audit: hash chain over archived batches, journal of computations

Batches stored before this revision are linked here, in id order.

Revision ID: 0006
Revises: 0002
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0002"  # the batch columns the chain covers (archive_path, format, first_row)
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
GENESIS_HASH = "0" * 64
# The chain's definition at this revision (store/ledger.py holds the current one).
METADATA_FIELDS = (
    *("id", "exchange_id", "source", "format", "filename"),
    *("first_row", "rows_total", "received_at", "archive_path"),
)


def _link_hash(previous_hash: str, batch_sha256: str, row) -> str:
    values = {name: row[name] for name in METADATA_FIELDS}
    received = values["received_at"]
    if received.tzinfo is None:  # SQLite keeps the UTC wall time
        received = received.replace(tzinfo=dt.UTC)
    values["received_at"] = received.astimezone(dt.UTC).isoformat(timespec="microseconds")
    metadata = json.dumps(values, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(bytes.fromhex(previous_hash) + bytes.fromhex(batch_sha256))
    digest.update(metadata)
    return digest.hexdigest()


def upgrade() -> None:
    op.create_table(
        "audit_chain",
        sa.Column("seq", BigId, autoincrement=False, nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("previous_hash", sa.String(length=64), nullable=False),
        sa.Column("chain_hash", sa.String(length=64), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["ingest_batches.id"], name=op.f("fk_audit_chain_batch_id_ingest_batches")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_chain")),
        sa.UniqueConstraint("batch_id", name=op.f("uq_audit_chain_batch_id")),
    )
    head = op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("chain_hash", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    op.create_table(
        "audit_computations",
        sa.Column("id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("methodology_version", sa.String(length=32), nullable=False),
        sa.Column("trading_days", sa.JSON(), nullable=False),
        sa.Column("last_batch_id", sa.Integer(), nullable=True),
        sa.Column("last_fx_id", sa.Integer(), nullable=True),
        sa.Column("reference_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_computations")),
    )
    with op.batch_alter_table("audit_computations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_computations_computed_at", ["computed_at", "id"], unique=False
        )

    _link_existing_batches(head)


def _link_existing_batches(head: sa.Table) -> None:
    connection = op.get_bind()
    instant = sa.DateTime(timezone=True)
    batches = sa.table(
        "ingest_batches",
        *(
            sa.column(name, instant) if name == "received_at" else sa.column(name)
            for name in (*METADATA_FIELDS, "sha256")
        ),
    )
    query = sa.select(*batches.c).order_by(batches.c.id)
    links = sa.table(
        "audit_chain",
        sa.column("seq"),
        sa.column("batch_id"),
        sa.column("previous_hash"),
        sa.column("chain_hash"),
        sa.column("linked_at", instant),
    )
    previous, seq, rows = GENESIS_HASH, 0, []
    now = dt.datetime.now(dt.UTC)
    for row in connection.execute(query).mappings():
        seq += 1
        chain_hash = _link_hash(previous, row["sha256"], row)
        rows.append(
            {
                "seq": seq,
                "batch_id": row["id"],
                "previous_hash": previous,
                "chain_hash": chain_hash,
                "linked_at": now,
            }
        )
        previous = chain_hash
    if rows:
        op.bulk_insert(links, rows)
    op.bulk_insert(head, [{"id": 1, "seq": seq, "chain_hash": previous, "updated_at": now}])


def downgrade() -> None:
    with op.batch_alter_table("audit_computations", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_computations_computed_at")
    op.drop_table("audit_computations")
    op.drop_table("audit_chain_head")
    op.drop_table("audit_chain")

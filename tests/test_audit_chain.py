"""The archive's hash chain: ``bcpi audit verify`` passes on an intact history and fails,
naming the batch, when one archived byte, a batch record or a link is changed."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from sqlalchemy import select, update

from audit.chain import verify_chain
from cli.demo import run_pipeline
from publication.fixing import default_calendar
from store import models
from store.db import session_scope
from store.ledger import batch_metadata
from store.models import GENESIS_HASH, AuditChainHead, AuditLink
from tests.feeds_support import client_for, exchange_key, push, trade


def _history(engine, database_url, catalogue, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    archive = tmp_path / "var" / "archive"
    # The catalogue's base date, 2 January 2025, and 3 January: publication days.
    run_pipeline(engine, catalogue, tmp_path / "feeds", days=2, calendar=default_calendar())
    with client_for(database_url, archive) as client:
        key = exchange_key(engine, "HTTPX")
        for n in range(3):
            rows = [trade(f"P{n}-{i}", price=str(3300 + i)) for i in range(5)]
            assert push(client, key, rows, "json").status_code == 200
    return archive


def _verify(engine, archive):
    with session_scope(engine) as session:
        return verify_chain(session, archive)


def _expected_head(engine) -> str:
    """The chain recomputed by hand from the batch records: SHA-256 over the raw bytes of
    the previous hash and the batch's SHA-256, then its metadata."""
    head = GENESIS_HASH
    with session_scope(engine) as session:
        for batch in session.scalars(select(models.IngestBatch).order_by(models.IngestBatch.id)):
            data = bytes.fromhex(head) + bytes.fromhex(batch.sha256) + batch_metadata(batch)
            head = hashlib.sha256(data).hexdigest()
    return head


def test_every_batch_is_chained_and_verifies(
    engine, database_url, catalogue, tmp_path, monkeypatch
):
    archive = _history(engine, database_url, catalogue, tmp_path, monkeypatch)
    report = _verify(engine, archive)
    assert report.ok, report.problems
    assert report.batches == report.links == 6  # three demo files, three pushes
    assert report.files == 6
    assert report.head_hash == _expected_head(engine)
    with session_scope(engine) as session:
        seqs = session.scalars(select(AuditLink.seq).order_by(AuditLink.seq)).all()
        head = session.get(AuditChainHead, 1)
    assert seqs == [1, 2, 3, 4, 5, 6] and head.seq == 6

    # bytes of a write cut short, and of a batch that never committed: unused, not failures
    (archive / "HTTPX" / ".incoming-x1").write_bytes(b"partial")
    (archive / "HTTPX" / "00").mkdir(exist_ok=True)
    (archive / "HTTPX" / "00" / "00dead.json").write_bytes(b"[]")
    report = _verify(engine, archive)
    assert report.ok and (report.partial_files, report.unreferenced_files) == (1, 1)


def test_one_flipped_byte_fails_verify_and_names_the_batch(
    engine, database_url, catalogue, tmp_path, monkeypatch
):
    archive = _history(engine, database_url, catalogue, tmp_path, monkeypatch)
    with session_scope(engine) as session:
        victim = session.scalars(
            select(models.IngestBatch).where(models.IngestBatch.source == "http")
        ).first()
        victim_id, relative = victim.id, victim.archive_path
    path = archive / relative
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    report = _verify(engine, archive)
    assert not report.ok
    assert [p.batch_id for p in report.problems] == [victim_id]
    assert "SHA-256" in report.problems[0].what

    # the command says the same and exits non-zero
    env = {**os.environ, "BCPI_ARCHIVE_DIR": str(archive), "BCPI_LOG_FORMAT": "text"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from cli.main import main; main()",
            "audit",
            "verify",
            "--database-url",
            database_url,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"FAIL batch {victim_id}: archive {relative}" in done.stdout
    assert "audit verify: FAILED, 1 problem(s)" in done.stdout


def test_a_changed_record_or_a_removed_link_breaks_the_chain(
    engine, database_url, catalogue, tmp_path, monkeypatch
):
    archive = _history(engine, database_url, catalogue, tmp_path, monkeypatch)
    with session_scope(engine) as session:
        batch_ids = session.scalars(
            select(models.IngestBatch.id).order_by(models.IngestBatch.id)
        ).all()
        original = session.get(models.IngestBatch, batch_ids[1]).filename
        session.execute(
            update(models.IngestBatch)
            .where(models.IngestBatch.id == batch_ids[1])
            .values(filename="renamed.csv")
        )
    report = _verify(engine, archive)
    assert [(p.batch_id, p.what) for p in report.problems] == [
        (batch_ids[1], "link 2: the batch record was changed")
    ]

    with session_scope(engine) as session:
        session.execute(
            update(models.IngestBatch)
            .where(models.IngestBatch.id == batch_ids[1])
            .values(filename=original)
        )
        session.execute(AuditLink.__table__.delete().where(AuditLink.seq == 4))
    report = _verify(engine, archive)
    named = {p.batch_id for p in report.problems}
    assert batch_ids[3] in named and batch_ids[4] in named  # the gap and the broken link

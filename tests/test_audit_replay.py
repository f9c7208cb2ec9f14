"""``bcpi audit replay``: the values published for a date, recomputed from the archived
batches, the journal and the recorded methodology, are bit-identical; a changed value or
a changed archive is reported, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import os
import subprocess
import sys

from sqlalchemy import select, update

from audit.replay import replay
from store import models
from store.db import read_engine_for, session_scope
from tests.audit_support import (
    HELD_DAY,
    INTRADAY_DAY,
    LATE_DAY,
    START,
    build_history,
    settings_for,
)

DATES = [START, LATE_DAY, HELD_DAY, INTRADAY_DAY]


def _replay(history, catalogue, dates, **kwargs):
    return replay(
        read_engine_for(history.database_url),
        archive_dir=history.archive,
        catalogue=catalogue,
        settings=settings_for(history),
        dates=dates,
        **kwargs,
    )


def _statuses(engine) -> set[str]:
    with session_scope(engine) as session:
        return set(
            session.scalars(
                select(models.IndexValue.status).where(models.IndexValue.date.in_(DATES))
            )
        ) | set(
            session.scalars(
                select(models.Assessment.status).where(models.Assessment.date.in_(DATES))
            )
        )


def test_replay_is_bit_identical_and_sees_a_changed_value_or_archive(
    engine, database_url, catalogue, tmp_path, monkeypatch
):
    history = build_history(engine, database_url, catalogue, tmp_path, monkeypatch)
    # the dates carry first vintages, restated ones and intraday provisional ones
    assert {"final", "restated", "provisional"} <= _statuses(engine)

    report = _replay(history, catalogue, DATES)
    print(
        f"\nreplay on {engine.dialect.name}: {len(report.dates)} dates, {report.values} values, "
        f"{report.identical} bit-identical, {report.batches} batches, "
        f"{report.computations} computations"
    )
    assert report.differences == []
    assert report.values > 0 and report.identical == report.values
    assert report.computations >= 4 and report.batches >= 8

    only = _replay(history, catalogue, [LATE_DAY], index_code="BCPI")
    assert only.ok and only.values >= 2  # the first vintage and the restated one

    # one published value moved by one unit in the last place: reported, bit for bit
    with session_scope(engine) as session:
        value = session.scalar(
            select(models.IndexValue)
            .join(models.IndexDefinition)
            .where(
                models.IndexDefinition.code == "BCPI",
                models.IndexValue.date == LATE_DAY,
                models.IndexValue.superseded_at.is_(None),
            )
        )
        original = value.value
        session.execute(
            update(models.IndexValue)
            .where(models.IndexValue.id == value.id)
            .values(value=math.nextafter(original, math.inf))
        )
    changed = _replay(history, catalogue, [LATE_DAY])
    assert not changed.ok
    assert [(d.what, d.code, d.date, d.field) for d in changed.differences] == [
        ("index", "BCPI", LATE_DAY, "value")
    ]
    difference = changed.differences[0]
    assert difference.published == math.nextafter(original, math.inf).hex()
    assert difference.replayed == original.hex()
    assert changed.identical == changed.values - 1

    # the command prints the difference and exits non-zero
    env = {**os.environ, "BCPI_ARCHIVE_DIR": str(history.archive), "BCPI_LOG_FORMAT": "text"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from cli.main import main; main()",
            "audit",
            "replay",
            "--date",
            LATE_DAY.isoformat(),
            "--index",
            "BCPI",
            "--database-url",
            database_url,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"DIFF index BCPI {LATE_DAY}" in done.stdout
    assert "audit replay: DIFFERENCES found" in done.stdout

    # an archived file changed: the batch is named and its trades are not replayed
    with session_scope(engine) as session:
        session.execute(
            update(models.IndexValue).where(models.IndexValue.id == value.id).values(value=original)
        )
        batch = session.scalar(
            select(models.IngestBatch).where(models.IngestBatch.source == "file")
        )
        batch_id, relative = batch.id, batch.archive_path
    path = history.archive / relative
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n", 1))
    tampered = _replay(history, catalogue, [START])
    named = [d for d in tampered.differences if d.what == "batch"]
    assert [d.field for d in named] == ["sha256"] and f"batch {batch_id}" in named[0].code
    assert not tampered.ok

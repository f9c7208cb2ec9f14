"""A backup taken while exchanges push restores into a fresh database and archive where the
audit finds every batch, every trade and every published value as it was."""

from __future__ import annotations

import threading
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from audit.chain import verify_chain
from audit.replay import published_dates, replay
from audit.stored_trades import rebuild_trades
from cli.main import app
from core.errors import BackupError
from core.settings import Settings, get_settings
from store import models
from store.backup import MANIFEST, backup, restore
from store.db import engine_for, read_engine_for, session_scope
from tests.audit_support import build_history, settings_for
from tests.feeds_support import client_for, exchange_key, push, trade


@contextmanager
def _empty_database(database_url: str, tmp_path: Path, admin_url: str | None):
    """A new, empty database of the same kind as ``database_url``."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'bcpi.db'}"
        return
    import psycopg
    from psycopg import sql

    name = f"bcpi_restore_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + (
            f"/{name}"
        )
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _batches(engine) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(models.IngestBatch))


def test_a_backup_under_pushes_restores_and_audits_clean(
    engine, database_url, catalogue, tmp_path, monkeypatch, request
):
    history = build_history(engine, database_url, catalogue, tmp_path, monkeypatch)
    admin_url = None
    if not database_url.startswith("sqlite"):
        admin_url = request.getfixturevalue("postgres_admin_url")
    before = _batches(engine)
    stop = threading.Event()
    pushed: list[int] = []

    def pushing() -> None:
        with client_for(database_url, history.archive) as client:
            key = exchange_key(engine, "LIVE")
            n = 0
            while not stop.is_set() and n < 200:
                n += 1
                rows = [trade(f"LIVE-{n}-{i}", price=str(3300 + i)) for i in range(20)]
                answer = push(client, key, rows)
                assert answer.status_code == 200, answer.text
                pushed.append(n)

    writer = threading.Thread(target=pushing)
    writer.start()
    try:
        while len(pushed) < 3:
            stop.wait(0.05)
        report = backup(database_url, history.archive, tmp_path / "backup")
    finally:
        stop.set()
        writer.join()
    assert pushed and report.files > 0
    assert (tmp_path / "backup" / MANIFEST).is_file()

    with _empty_database(database_url, tmp_path, admin_url) as target:
        archive = tmp_path / "restored-archive"
        restored = restore(tmp_path / "backup", target, archive)
        assert restored.files == report.files
        copy = engine_for(target)
        # every batch committed before the backup began is there; pushes during it may be
        assert before < _batches(copy) <= _batches(engine)
        with session_scope(copy) as session:
            chain = verify_chain(session, archive)
            dates = published_dates(session)
        assert chain.ok, chain.problems
        settings = Settings(database_url=target, archive_dir=archive)
        trades = rebuild_trades(
            read_engine_for(target), archive_dir=archive, catalogue=catalogue, settings=settings
        )
        assert trades.ok and trades.values > 0 and trades.identical == trades.values
        values = replay(
            read_engine_for(target),
            archive_dir=archive,
            catalogue=catalogue,
            settings=settings,
            dates=dates,
        )
        assert values.differences == []
        assert values.values > 0 and values.identical == values.values
        original = replay(
            read_engine_for(database_url),
            archive_dir=history.archive,
            catalogue=catalogue,
            settings=settings_for(history),
            dates=dates,
        )
        assert values.values == original.values
        copy.dispose()

        with pytest.raises(BackupError, match=r"empty|exists"):
            restore(tmp_path / "backup", target, tmp_path / "another-archive")


def test_a_damaged_backup_is_refused_before_anything_is_written(
    engine, database_url, catalogue, tmp_path, monkeypatch
):
    history = build_history(engine, database_url, catalogue, tmp_path, monkeypatch)
    backup(database_url, history.archive, tmp_path / "backup")
    archived = sorted((tmp_path / "backup" / "archive").rglob("*.*"))
    archived[0].write_bytes(archived[0].read_bytes() + b"x")
    target = tmp_path / "restored.db"
    with pytest.raises(BackupError, match="does not match the manifest"):
        restore(tmp_path / "backup", f"sqlite:///{target}", tmp_path / "archive-copy")
    assert not target.exists() and not (tmp_path / "archive-copy").exists()
    with pytest.raises(BackupError, match="not empty"):
        backup(database_url, history.archive, tmp_path / "backup")


def test_the_commands_back_up_and_restore(engine, database_url, catalogue, tmp_path, monkeypatch):
    if not database_url.startswith("sqlite"):
        pytest.skip("the command's path is the same on both; the service test covers PostgreSQL")
    history = build_history(engine, database_url, catalogue, tmp_path, monkeypatch)

    def run(database: str, archive: Path, *args: str):
        monkeypatch.setenv("BCPI_DATABASE_URL", database)
        monkeypatch.setenv("BCPI_ARCHIVE_DIR", str(archive))
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(app, list(args))
        finally:
            get_settings.cache_clear()

    made = run(database_url, history.archive, "backup", str(tmp_path / "copy"))
    assert made.exit_code == 0, made.output
    assert "archived files" in made.output
    target, archive = f"sqlite:///{tmp_path / 'again.db'}", tmp_path / "again-archive"
    done = run(target, archive, "restore", str(tmp_path / "copy"))
    assert done.exit_code == 0, done.output
    verified = run(target, archive, "audit", "verify")
    assert verified.exit_code == 0, verified.output
    again = run(target, archive, "restore", str(tmp_path / "copy"))
    assert again.exit_code == 2 and "error:" in again.output

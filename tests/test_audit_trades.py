"""``bcpi audit verify`` rebuilds every stored trade from the archived batches and FX loads
and names a trades row edited behind the service's back, field by field."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from typer.testing import CliRunner

from core.settings import get_settings
from store.db import make_engine
from tests.calendar_support import fed, world

START, END = dt.date(2026, 3, 2), dt.date(2026, 3, 6)


def _verify(monkeypatch, settings, catalogue_path):
    from cli.main import app as cli

    monkeypatch.setenv("BCPI_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BCPI_ARCHIVE_DIR", str(settings.archive_dir))
    monkeypatch.setenv("BCPI_CATALOGUE_PATH", str(catalogue_path))
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(cli, ["audit", "verify"])
    finally:
        get_settings.cache_clear()


def test_an_edited_trades_row_is_named(database_url, tmp_path, monkeypatch):
    (tmp_path / "world").mkdir()
    feeds = world(tmp_path / "world", START, END)
    settings = fed(database_url, tmp_path, feeds)
    clean = _verify(monkeypatch, settings, feeds.catalogue_path)
    assert clean.exit_code == 0, clean.output
    assert "every stored trade is what its archived batches give" in clean.output

    engine = make_engine(database_url)
    with engine.begin() as connection:
        trade_id, price = connection.execute(
            text("SELECT trade_id, price FROM trades ORDER BY id LIMIT 1")
        ).one()
        connection.execute(
            text("UPDATE trades SET price = price + 1 WHERE trade_id = :t"), {"t": trade_id}
        )
    engine.dispose()
    edited = _verify(monkeypatch, settings, feeds.catalogue_path)
    assert edited.exit_code == 1, edited.output
    lines = [line for line in edited.output.splitlines() if line.startswith("FAIL trade")]
    assert len(lines) == 1
    assert trade_id in lines[0] and ": price: stored " in lines[0]
    assert f"{price + 1!r}" in lines[0] and f"the archive gives {price!r}" in lines[0]

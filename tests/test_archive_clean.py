"""Partial archive files left by killed writes are removed once old; nothing else is."""

from __future__ import annotations

import datetime as dt
import os
import time

import pytest
from typer.testing import CliRunner

import ingest.archive
from cli.main import app as cli
from ingest.archive import archive_bytes, remove_partial_files

HOUR = 3600


def _aged(path, seconds: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"partial bytes")
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


@pytest.fixture
def archive(tmp_path):
    root = tmp_path / "archive"
    kept = archive_bytes(root, "BJX", b'[{"trade_id": "1"}]', "json")
    old = [
        _aged(root / "BJX" / ".incoming-a1", 2 * HOUR),
        _aged(root / "SHX" / ".incoming-b2", 30 * HOUR),
    ]
    fresh = _aged(root / "BJX" / ".incoming-c3", 60)
    return root, root / kept.path, old, fresh


def test_old_partial_files_go_and_everything_else_stays(archive):
    root, complete, old, fresh = archive
    removed = remove_partial_files(root, dt.timedelta(hours=1))
    assert sorted(removed) == sorted(old)
    assert not any(p.exists() for p in old)
    assert fresh.exists() and complete.read_bytes() == b'[{"trade_id": "1"}]'
    assert remove_partial_files(root, dt.timedelta(hours=1)) == []
    assert remove_partial_files(root / "missing", dt.timedelta(hours=1)) == []


def test_the_command_reports_what_it_removed(archive):
    root, complete, old, fresh = archive
    result = CliRunner().invoke(
        cli, ["audit", "clean", "--older-than-minutes", "90", "--archive-dir", str(root)]
    )
    assert result.exit_code == 0, result.output
    assert "removed 2 partial archive file(s) older than 90 min" in result.stderr
    assert fresh.exists() and complete.exists() and not any(p.exists() for p in old)


def test_a_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    def broken_place(tmp, dest):
        raise OSError("disk full")

    monkeypatch.setattr(ingest.archive, "_place", broken_place)
    with pytest.raises(OSError, match="disk full"):
        archive_bytes(tmp_path, "BJX", b"[]", "json")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []

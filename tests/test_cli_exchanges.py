"""``bcpi exchanges list`` and ``add`` (after the demo too), the late-trade warning of
``bcpi ingest``, and the progress of the long commands: plain lines without a terminal (as
here), a bar on one."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import sys

import pytest
from rich.console import Console
from typer.testing import CliRunner

from cli.main import app as cli
from cli.progress import progress
from core.methodology import METHODOLOGY_DIR
from core.settings import get_settings
from tests.feeds_support import client_for, push, trade

KEY = re.compile(r"^bcpi_[A-Za-z0-9_-]{43}$")
FEED_HEADER = "trade_id,commodity,traded_at,price,quantity,currency,unit\n"


def bcpi(url: str, *args: str):
    return CliRunner().invoke(cli, [*map(str, args), "--database-url", url])


@pytest.fixture
def env(database_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the demo writes ./var/demo-feeds and ./var/archive
    monkeypatch.setenv("BCPI_ARCHIVE_DIR", str(tmp_path / "archive"))
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def _feed(path, rows: list[str]):
    path.write_text(FEED_HEADER + "".join(f"{row}\n" for row in rows))
    return path


def test_exchanges_list_shows_keys_last_batch_and_trades(env, tmp_path):
    assert KEY.match(bcpi(env, "exchanges", "add", "AAX", "--name", "Alpha Exchange").stdout)
    assert bcpi(env, "exchanges", "add", "BBX", "--name", "Beta Exchange").exit_code == 0
    assert bcpi(env, "exchanges", "rotate-key", "BBX").exit_code == 0
    feed = _feed(
        tmp_path / "a.csv",
        [
            "A1,REBAR,2025-03-03T10:00:00+08:00,3300,10,CNY,t",
            "A2,REBAR,2025-03-03T10:01:00+08:00,3310,10,CNY,t",
            "A3,REBAR,2025-03-03T10:02:00+08:00,-1,10,CNY,t",  # rejected
        ],
    )
    before = dt.datetime.now(dt.UTC)
    assert bcpi(env, "ingest", feed, "--exchange", "AAX").exit_code == 0

    listed = bcpi(env, "exchanges", "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = {row["code"]: row for row in json.loads(listed.stdout)}
    assert list(rows) == ["AAX", "BBX"]
    alpha, beta = rows["AAX"], rows["BBX"]
    assert (alpha["name"], alpha["keys"], alpha["active_keys"], alpha["trades"]) == (
        "Alpha Exchange",
        1,
        1,
        2,
    )
    assert before <= dt.datetime.fromisoformat(alpha["last_batch_at"]) <= dt.datetime.now(dt.UTC)
    assert (beta["keys"], beta["active_keys"], beta["trades"], beta["last_batch_at"]) == (
        2,
        1,
        0,
        None,
    )

    table = bcpi(env, "exchanges", "list")
    assert table.exit_code == 0
    for text in ("AAX", "Alpha Exchange", "BBX", "1 (1)", "2 (1)", "never", "trades stored"):
        assert text in table.stdout


def test_exchanges_add_after_the_demo_gives_the_demo_exchange_its_key(env, tmp_path):
    demo = bcpi(env, "demo", "--days", "3", "--no-serve")
    assert demo.exit_code == 0, demo.output
    keyless = {
        row["code"]: row for row in json.loads(bcpi(env, "exchanges", "list", "--json").stdout)
    }
    assert keyless["BJCX"]["keys"] == 0 and keyless["BJCX"]["trades"] > 0

    # the README's first command after the demo
    added = bcpi(env, "exchanges", "add", "BJCX", "--name", "Beijing Commodity e-Trading Exchange")
    assert added.exit_code == 0, added.output
    key = added.stdout.strip()
    assert KEY.match(key)
    with client_for(env, tmp_path / "archive") as client:
        answer = push(client, key, [trade("AFTER-DEMO")])
        assert answer.status_code == 200 and answer.json()["accepted"] == 1

    again = bcpi(env, "exchanges", "add", "BJCX", "--name", "Beijing Commodity e-Trading Exchange")
    assert again.exit_code == 2 and again.stdout == ""
    message = " ".join(again.stderr.split())
    assert "exchange 'BJCX'" in message and "already exists" in message
    assert "1 active key(s)" in message and "bcpi exchanges rotate-key BJCX" in message
    assert env.split("://")[0] in message  # names the database it looked in

    # the demo's history: compute, replay and backtest report their progress as plain lines
    computed = bcpi(env, "compute", "--start", "2025-01-02", "--end", "2025-01-10")
    assert computed.exit_code == 0, computed.output
    assert _plain_progress(computed.stderr, "compute")
    # its phases, in order: 2025-01-02..10 holds 7 weekdays
    assert _in_order(
        computed.stderr,
        "compute: withdrawing values of days that are not publication days",
        "compute: assessing 7 publication days (2025-01-02..2025-01-10) under ",
        "compute: computing the indices from 2025-01-02",
        "compute: noting what changed in published values",
    )
    replayed = bcpi(env, "audit", "replay", "--date", "2025-01-03")
    assert replayed.exit_code == 0, replayed.output
    assert _plain_progress(replayed.stderr, "audit replay")
    assert "audit replay: OK" in replayed.stdout and "OK" not in replayed.stderr
    # the computations to replay counted, then every one of them done
    counted = re.search(r"^audit replay: (\d+) computations to do$", replayed.stderr, re.M)
    assert counted and int(counted[1]) >= 1
    total = int(counted[1])
    assert re.search(rf"^audit replay: {total}/{total} computations$", replayed.stderr, re.M)
    assert "audit replay: comparing with the published values" in replayed.stderr
    tested = bcpi(env, "backtest", "--methodology", METHODOLOGY_DIR / "v2025.2.toml")
    assert tested.exit_code == 0, tested.output
    assert _plain_progress(tested.stderr, "backtest 2025.2")
    assert _in_order(
        tested.stderr,
        "backtest 2025.2: copying the inputs of ",
        "backtest 2025.2: assessing ",
        "backtest 2025.2: computing the indices from ",
        "backtest 2025.2: comparing with the published values",
    )


def _in_order(stderr: str, *starts: str) -> bool:
    """Each of ``starts`` begins a line, in this order."""
    lines = stderr.splitlines()
    found = [next((i for i, line in enumerate(lines) if line.startswith(s)), -1) for s in starts]
    return -1 not in found and found == sorted(found)


def _plain_progress(stderr: str, name: str) -> bool:
    """A start line, a done line with the seconds, no terminal control sequences."""
    lines = stderr.splitlines()
    started = [i for i, line in enumerate(lines) if line.startswith(f"{name}: started")]
    done = [i for i, line in enumerate(lines) if re.fullmatch(rf"{name}: done in \d+\.\ds", line)]
    return len(started) == len(done) == 1 and started[0] < done[0] and "\x1b[" not in stderr


def test_ingest_warns_of_trades_older_than_the_correction_window(env, tmp_path):
    bcpi(env, "exchanges", "add", "AAX", "--name", "Alpha")
    recent = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    feed = _feed(
        tmp_path / "late.csv",
        [
            "OLD-1,REBAR,2025-03-03T10:00:00+08:00,3300,10,CNY,t",
            "OLD-2,REBAR,2025-03-04T10:00:00+08:00,3300,10,CNY,t",
            f"NEW-1,REBAR,{recent},3300,10,CNY,t",
        ],
    )
    result = bcpi(env, "ingest", feed, "--exchange", "AAX")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stderr.split())
    assert "warning: 2 trade(s) accepted for publication days before" in text
    assert "change nothing published" in text and "trade ids: OLD-1, OLD-2" in text
    assert "NEW-1" not in text.split("warning:")[1]
    # the progress, as plain lines: started with the row count, done
    assert re.search(r"^ingest late\.csv: started \(3 rows\)$", result.stderr, re.M)
    assert re.search(r"^ingest late\.csv: done in \d+\.\ds$", result.stderr, re.M)
    assert "\x1b[" not in result.stderr

    again = bcpi(env, "ingest", feed, "--exchange", "AAX")
    assert again.exit_code == 0 and "warning:" not in again.stderr  # all duplicates


def test_the_progress_is_a_bar_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with progress("ingest big.csv", total=4, unit="rows", console=console) as job:
        job.advance(2)
        job.advance(2)
    shown = screen.getvalue()
    assert "\x1b[" in shown and "ingest big.csv: done in" in shown
    assert "started" not in shown  # the bar, not the plain lines


def test_help_documents_the_commands():
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"]).stdout
    for command in ("exchanges", "ingest", "compute", "backtest", "audit", "demo"):
        assert command in top
    exchanges = runner.invoke(cli, ["exchanges", "--help"]).stdout
    assert "list" in exchanges and "add" in exchanges and "rotate-key" in exchanges
    listing = " ".join(runner.invoke(cli, ["exchanges", "list", "--help"]).stdout.split())
    assert "--json" in listing and "trades stored" in listing
    for args in (["ingest", "--help"], ["compute", "--help"], ["audit", "replay", "--help"]):
        assert runner.invoke(cli, args).exit_code == 0

"""The feed commands: ``bcpi ingest`` (progress, summary, rejected rows, bounded memory) and
``bcpi fx load``."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from cli.main import app as cli
from cli.synthetic import generate
from tests.feeds_support import stored_counts, stored_trades

# The full check ingests 10 million rows (BCPI_INGEST_ROWS=10000000); CI a few hundred thousand.
LARGE_ROWS = int(os.environ.get("BCPI_INGEST_ROWS", "200000"))
RSS_LIMIT_MIB = 1024


@pytest.fixture
def env(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("BCPI_ARCHIVE_DIR", str(tmp_path / "archive"))
    return {"url": database_url}


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_ingest_files_with_a_summary_and_rejected_rows_beside_them(env, engine, tmp_path):
    feeds = generate(tmp_path / "feeds", start=dt.date(2025, 3, 3), days=5)
    bjcx, cbeex = feeds[0], feeds[1]
    parquet = tmp_path / "feeds" / "CBEEX.parquet"
    pl.read_csv(cbeex, infer_schema=False).write_parquet(parquet)
    added = _invoke("exchanges", "add", "BJCX", "--name", "B", "--database-url", env["url"])
    assert added.exit_code == 0

    result = _invoke(
        "ingest", str(bjcx), str(parquet), "--exchange", "BJCX", "--database-url", env["url"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "BJCX.csv" in result.stderr and "CBEEX.parquet" in result.stderr
    assert "unknown_commodity" in result.stderr and "rejected" in result.stderr
    for source in (bjcx, parquet):
        rejected = source.with_name(source.name + ".rejected.csv")
        rows = pl.read_csv(rejected, infer_schema=False)
        assert rows.height == 8  # the generator breaks 7 rows and repeats one
        assert set(rows["code"]) >= {"unknown_commodity", "non_positive_price", "not_finite"}
        assert rows.filter(pl.col("code") == "unknown_commodity")["commodity"].to_list() == [
            "UNOBTAINIUM"
        ]
    counts = stored_counts(engine)
    again = _invoke("ingest", str(bjcx), "--exchange", "BJCX", "--database-url", env["url"])
    assert again.exit_code == 0 and "duplicates" in again.stderr
    assert stored_counts(engine) == counts

    unknown = _invoke("ingest", str(bjcx), "--exchange", "NOPE", "--database-url", env["url"])
    assert unknown.exit_code == 2 and "NOPE" in unknown.stderr


def test_fx_load_releases_held_trades(env, engine, tmp_path):
    _invoke("exchanges", "add", "BJCX", "--name", "B", "--database-url", env["url"])
    feed = tmp_path / "methanol.csv"
    feed.write_text(
        "trade_id,commodity,traded_at,price,quantity,currency,unit\n"
        "M1,METHANOL,2025-03-03T10:00:00+08:00,310,500,USD,t\n"
    )
    assert (
        _invoke("ingest", str(feed), "--exchange", "BJCX", "--database-url", env["url"]).exit_code
        == 0
    )
    assert stored_trades(engine)["M1"].status == "held"
    rates = tmp_path / "fx.csv"
    rates.write_text("date,currency,cny_per_unit\n2025-03-03,USD,7.25\n")
    loaded = _invoke("fx", "load", str(rates), "--database-url", env["url"])
    assert loaded.exit_code == 0
    assert "1 rates loaded" in loaded.stderr and "1 held trades released" in loaded.stderr
    assert stored_trades(engine)["M1"].price == pytest.approx(310 * 7.25)
    refused = tmp_path / "changed.csv"
    refused.write_text("date,currency,cny_per_unit\n2025-03-03,USD,7.30\n")
    changed = _invoke("fx", "load", str(refused), "--database-url", env["url"])
    assert changed.exit_code == 2 and "differ" in changed.stderr


def test_a_large_file_is_ingested_in_bounded_memory(tmp_path):
    """A subprocess ingests LARGE_ROWS rows; its peak RSS stays under 1 GiB."""
    feed = tmp_path / "large.csv"
    n = LARGE_ROWS
    pl.DataFrame(
        {
            "trade_id": pl.int_range(0, n, eager=True).cast(pl.String),
            "commodity": ["REBAR", "HRC", "PTA", "METHANOL"] * (n // 4) + ["REBAR"] * (n % 4),
        }
    ).with_columns(
        pl.lit("2025-03-03T10:00:00+08:00").alias("traded_at"),
        (3000 + pl.int_range(0, n) % 500).cast(pl.String).alias("price"),
        pl.lit("10").alias("quantity"),
        pl.lit("CNY").alias("currency"),
        pl.lit("t").alias("unit"),
    ).write_csv(feed)
    database = tmp_path / "large.db"
    # The peak of this process's own memory (VmHWM): ru_maxrss would also count the pytest
    # process it was forked from, whose resident size it inherits across the exec.
    script = (
        "import sys\n"
        "from cli.main import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    status = open('/proc/self/status').read().split('VmHWM:')[1].split()\n"
        "    print(int(status[0]) // 1024, file=sys.stdout)\n"
    )
    common = {
        **os.environ,
        "BCPI_DATABASE_URL": f"sqlite:///{database}",
        "BCPI_ARCHIVE_DIR": str(tmp_path / "archive"),
    }
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from cli.main import main; main()",
            "exchanges",
            "add",
            "BJCX",
            "--name",
            "B",
        ],
        env=common,
        check=True,
        capture_output=True,
    )
    run = subprocess.run(
        [sys.executable, "-c", script, "ingest", str(feed), "--exchange", "BJCX"],
        env={**common, "BCPI_ROWS_PER_BATCH": str(min(100_000, max(n // 4, 1)))},
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert run.returncode == 0, run.stderr
    peak_mib = int(run.stdout.strip().splitlines()[-1])
    print(f"\n{n:,} rows ingested by bcpi ingest; peak RSS {peak_mib} MiB")
    assert peak_mib < RSS_LIMIT_MIB, f"peak RSS {peak_mib} MiB for {n} rows"
    with sqlite3.connect(database) as con:
        assert con.execute("SELECT count(*) FROM trades").fetchone()[0] == n
        assert con.execute("SELECT count(*) FROM ingest_batches").fetchone()[0] >= 4

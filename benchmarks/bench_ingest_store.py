"""Durable insert of normalised trades, beside the raw driver doing the same insert.

``BCPI_BENCH_STORE_ROWS`` trades (default 1 million) go into an empty ``trades`` table
with its ``UNIQUE(exchange_id, trade_id)`` key and indexes, in batches of 100,000, each
batch committed (durable: SQLite WAL with ``synchronous=FULL``; PostgreSQL's default
``synchronous_commit=on``):

- bcpi: :func:`store.upsert.insert_trades` from the Polars frame validation produces,
  inside a SQLAlchemy session, then the commit;
- SQLite peer: ``sqlite3`` ``executemany`` of the same ``INSERT … ON CONFLICT DO NOTHING``
  from rows already in Python tuples, on a connection with the same pragmas;
- PostgreSQL peer: psycopg ``COPY`` of the same rows (already in tuples) into an identical
  table with the same unique key.

Target: bcpi ≥ 0.8 of the raw driver. Run:

    .venv/bin/pytest benchmarks/bench_ingest_store.py --benchmark-enable -s

PostgreSQL runs when ``BCPI_TEST_POSTGRES_URL`` (default the local ``test`` database)
answers; each run creates and drops its own database.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import uuid

import polars as pl
import pytest

from benchmarks.timing import best_seconds
from cli.synthetic import ticks
from core.calendar import Calendar
from core.catalogue import load_catalogue
from core.methodology import in_force
from core.settings import Settings
from ingest.normalise import stored_frame
from ingest.rules import FxTable, build_rules
from ingest.validate import REJECT_CODE, validated_frame
from store import models
from store.bootstrap import prepare_database
from store.db import make_engine, session_factory
from store.reference import ensure_exchange
from store.upsert import INSTANT_COLUMNS, TRADE_COLUMNS, insert_trades

ROWS = int(os.environ.get("BCPI_BENCH_STORE_ROWS", "1000000"))
BATCH = 100_000
TARGET = 0.8
ADMIN_URL = os.environ.get("BCPI_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
RESULTS: dict[tuple[str, str], float] = {}


@pytest.fixture(scope="module")
def batches() -> list[pl.DataFrame]:
    """The normalised trades, as validation hands them to storage, in batches."""
    catalogue = load_catalogue(Settings().catalogue_path)
    rules = build_rules(
        catalogue,
        {c.code: i + 1 for i, c in enumerate(catalogue.commodities)},
        Calendar(in_force()),
    )
    frame = ticks(ROWS, start=dt.date(2025, 1, 2))
    checked = validated_frame(
        frame.lazy(), rules, FxTable.from_rows([]), now=dt.datetime.now(dt.UTC)
    ).collect()
    received = dt.datetime.now(dt.UTC)
    good = stored_frame(checked.lazy().filter(pl.col(REJECT_CODE).is_null())).collect()
    assert good.height == ROWS
    return [
        good.slice(start, BATCH).with_columns(
            pl.lit(1).alias("exchange_id"),
            pl.lit(1).alias("batch_id"),
            pl.lit(0).alias("revision"),
            pl.lit(received, dtype=pl.Datetime("us", "UTC")).alias("received_at"),
        )
        for start in range(0, ROWS, BATCH)
    ]


def _tuples(batch: pl.DataFrame, instant_format: str) -> list[tuple]:
    return batch.select(
        pl.col(c).dt.strftime(instant_format) if c in INSTANT_COLUMNS else pl.col(c)
        for c in TRADE_COLUMNS
    ).rows()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        yield "sqlite", lambda n: f"sqlite:///{tmp_path / f'bench{n}.db'}"
        return
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    created = []

    def new_database(_n) -> str:
        name = f"bcpi_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        return f"{base}/{name}"

    yield "postgresql", new_database
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        for name in created:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _empty_schema(url: str) -> str:
    """A new database at the current schema with one exchange and one batch; its URL."""
    engine = make_engine(url)
    prepare_database(engine, load_catalogue(Settings().catalogue_path))
    with session_factory(engine).begin() as session:
        exchange = ensure_exchange(session, "BENCH")
        session.add(
            models.IngestBatch(
                exchange_id=exchange.id,
                source="bench",
                sha256="",
                received_at=dt.datetime.now(dt.UTC),
            )
        )
    engine.dispose()
    return url


def bcpi_insert(engine, batches) -> int:
    inserted = 0
    sessions = session_factory(engine)
    for batch in batches:
        with sessions.begin() as session:
            inserted += insert_trades(session, batch)
    return inserted


def sqlite_peer(path: str, rows: list[list[tuple]]) -> int:
    con = sqlite3.connect(path, isolation_level=None)
    # bcpi's own connection settings (store.db), foreign keys enforced included.
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000", "foreign_keys=ON"):
        con.execute(f"PRAGMA {pragma}")
    columns = ", ".join(TRADE_COLUMNS)
    marks = ", ".join("?" * len(TRADE_COLUMNS))
    sql = (
        f"INSERT INTO trades ({columns}) VALUES ({marks}) "
        "ON CONFLICT (exchange_id, trade_id) DO NOTHING"
    )
    inserted = 0
    for part in rows:
        con.execute("BEGIN IMMEDIATE")
        cursor = con.executemany(sql, part)
        inserted += cursor.rowcount
        con.execute("COMMIT")
    con.close()
    return inserted


def postgres_peer(url: str, rows: list[list[tuple]]) -> int:
    import psycopg

    columns = ", ".join(TRADE_COLUMNS)
    inserted = 0
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as con:
        for part in rows:
            with con.cursor() as cursor, cursor.copy(f"COPY trades ({columns}) FROM STDIN") as copy:
                for row in part:
                    copy.write_row(row)
            con.commit()
            inserted += len(part)
    return inserted


def _report(dialect: str, name: str, benchmark) -> None:
    seconds = best_seconds(benchmark)
    if seconds is None:
        return
    RESULTS[(dialect, name)] = ROWS / seconds
    print(f"\n{dialect} {name}: {RESULTS[(dialect, name)]:,.0f} ticks/s ({ROWS:,} rows)")
    if (dialect, "bcpi") in RESULTS and (dialect, "raw driver") in RESULTS:
        ratio = RESULTS[(dialect, "bcpi")] / RESULTS[(dialect, "raw driver")]
        verdict = "meets" if ratio >= TARGET else "misses"
        print(f"{dialect}: bcpi / raw driver = {ratio:.2f} ({verdict} the {TARGET} target)")


def test_raw_driver_insert(benchmark, database, batches):
    dialect, new_url = database
    fmt = "%Y-%m-%d %H:%M:%S%.6f" if dialect == "sqlite" else "%Y-%m-%d %H:%M:%S%.6f+00:00"
    rows = [_tuples(b, fmt) for b in batches]
    counter = iter(range(1000))

    def setup():
        url = _empty_schema(new_url(next(counter)))
        target = url.removeprefix("sqlite:///") if dialect == "sqlite" else url
        return (target, rows), {}

    peer = sqlite_peer if dialect == "sqlite" else postgres_peer
    inserted = benchmark.pedantic(peer, setup=setup, rounds=3, iterations=1)
    assert inserted == ROWS
    _report(dialect, "raw driver", benchmark)


def test_bcpi_insert(benchmark, database, batches):
    dialect, new_url = database
    counter = iter(range(1000, 2000))
    engines = []

    def setup():
        engine = make_engine(_empty_schema(new_url(next(counter))))
        engines.append(engine)
        return (engine, batches), {}

    inserted = benchmark.pedantic(bcpi_insert, setup=setup, rounds=3, iterations=1)
    for engine in engines:
        engine.dispose()
    assert inserted == ROWS
    _report(dialect, "bcpi", benchmark)

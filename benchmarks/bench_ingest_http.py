"""HTTP push end to end, beside the raw driver storing the same trades.

uvicorn serves the app in a subprocess on 127.0.0.1 (one worker; SQLite unless
``BCPI_BENCH_DATABASE_URL`` names another database). One keep-alive client pushes
``BCPI_BENCH_PUSHES`` batches (default 30) of 10,000 new trades per format (Arrow IPC
stream, JSON array), each answered only after its commit, and, as the same server's trivial
peer, as many ``GET /healthz``.

Each batch is one trading day of its own, its trades in time order, the days following one
another (Arrow and JSON on disjoint days): an exchange pushing live sends its recent trades,
while bulk history goes through ``bcpi ingest`` files.

Raw-driver peer, in the same run: the same batches, already normalised and in Python tuples,
inserted as :mod:`benchmarks.bench_ingest_store` does (SQLite: ``sqlite3`` ``executemany``
of ``INSERT … ON CONFLICT DO NOTHING`` with WAL and ``synchronous=FULL``; PostgreSQL:
psycopg ``COPY``) into an identical, separately prepared database, one transaction and
durable commit per batch.

ADBC peer, in the same run: the Arrow format's batches as Arrow tables (the columns the raw driver
stores, instants as SQLite's text or as UTC timestamps on PostgreSQL) appended with
``adbc_ingest`` (``adbc_driver_sqlite`` with bcpi's pragmas, ``adbc_driver_postgresql``)
into a third identical database, one commit per batch (a plain append: ADBC has no
``ON CONFLICT`` clause, so on SQLite it skips the duplicate handling the other two do).

Reported per format: ticks/s of the push, of the raw driver's insert and commit alone and of
the ADBC ingest, the ratios push / raw insert (targets for Arrow: ≥ 0.7 on SQLite, ≥ 0.8
on PostgreSQL; none for JSON) and push / ADBC, and requests/s of the pushes and of the
trivial requests. Run:

    .venv/bin/pytest benchmarks/bench_ingest_http.py --benchmark-enable -s
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import time
import uuid

import httpx
import polars as pl
import pytest
from sqlalchemy.engine import make_url

from benchmarks.bench_ingest_store import _empty_schema, _tuples, postgres_peer, sqlite_peer
from cli.synthetic import ticks, trading_days
from core.calendar import Calendar
from core.catalogue import load_catalogue
from core.methodology import in_force
from core.settings import Settings
from ingest.normalise import stored_frame
from ingest.rules import FxTable, build_rules
from ingest.validate import REJECT_CODE, validated_frame
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from store.reference import add_exchange
from store.upsert import INSTANT_COLUMNS, TRADE_COLUMNS
from tests.publication_server import serve

ROWS = 10_000
PUSHES = int(os.environ.get("BCPI_BENCH_PUSHES", "30"))
WARM = 2
FORMATS = ("arrow", "json")
TARGETS = {"sqlite": 0.7, "postgresql": 0.8}
MEDIA = {"arrow": "application/vnd.apache.arrow.stream", "json": "application/json"}
DAYS = trading_days(dt.date(2025, 1, 2), len(FORMATS) * (WARM + PUSHES))
# PostgreSQL's binary COPY (ADBC) needs the columns' exact integer widths.
PG_INT = {"exchange_id": pl.Int32, "batch_id": pl.Int32, "commodity_id": pl.Int32}
PG_INT |= {"revision": pl.Int32, "seq": pl.Int64}
INSTANT = {"sqlite": "%Y-%m-%d %H:%M:%S%.6f", "postgresql": "%Y-%m-%d %H:%M:%S%.6f+00:00"}


def _database_url(root) -> str:
    return os.environ.get("BCPI_BENCH_DATABASE_URL") or f"sqlite:///{root / 'bcpi.db'}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("push")
    url = _database_url(root)
    engine = make_engine(url)
    prepare_database(engine, load_catalogue(Settings().catalogue_path))
    with session_scope(engine) as session:
        _, key = add_exchange(session, f"B{time.time_ns() % 10**8}", "benchmark exchange")
    engine.dispose()
    with serve(url, archive_dir=str(root / "archive")) as running:
        running.key = key
        yield running


@pytest.fixture(scope="module")
def peer(tmp_path_factory):
    """The raw driver's database, prepared like the server's: (dialect, insert batches)."""
    url = make_url(_database_url(tmp_path_factory.mktemp("peer")))
    if url.get_backend_name() == "sqlite":
        path = make_url(_empty_schema(url.render_as_string())).database
        adbc_url = make_url(_database_url(tmp_path_factory.mktemp("adbc")))
        adbc_path = make_url(_empty_schema(adbc_url.render_as_string())).database
        yield (
            "sqlite",
            lambda rows: sqlite_peer(path, rows),
            lambda tables: adbc_sqlite_peer(adbc_path, tables),
        )
        return
    import psycopg

    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    names = [f"bcpi_bench_peer_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    with psycopg.connect(admin, autocommit=True) as con:
        for name in names:
            con.execute(f'CREATE DATABASE "{name}"')
    try:
        raw, adbc = (
            _empty_schema(url.set(database=name).render_as_string(hide_password=False))
            for name in names
        )
        yield (
            "postgresql",
            lambda rows: postgres_peer(raw, rows),
            lambda tables: adbc_postgres_peer(adbc, tables),
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as con:
            for name in names:
                con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def adbc_sqlite_peer(path: str, tables: list) -> int:
    import adbc_driver_sqlite.dbapi as adbc

    inserted = 0
    # Autocommit: the pragmas outside a transaction, then each ingest its own transaction.
    with adbc.connect(path, autocommit=True) as con, con.cursor() as cursor:
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
            cursor.fetchall()
        for table in tables:
            inserted += cursor.adbc_ingest("trades", table, mode="append")
    return inserted


def adbc_postgres_peer(url: str, tables: list) -> int:
    import adbc_driver_postgresql.dbapi as adbc

    inserted = 0
    with adbc.connect(url.replace("postgresql+psycopg://", "postgresql://")) as con:
        for table in tables:
            with con.cursor() as cursor:
                inserted += cursor.adbc_ingest("trades", table, mode="append")
            con.commit()
    return inserted


def _live_day(fmt: str, n: int) -> pl.DataFrame:
    """Batch ``n`` of ``fmt``: one trading day of new trades, in the order they happened."""
    day = DAYS[FORMATS.index(fmt) * (WARM + PUSHES) + n]
    prefix = f"{fmt}{n}-"
    frame = ticks(ROWS, start=day, days=1, seed=n, prefix=prefix).sort("traded_at")
    return frame.with_columns(
        pl.format("{}{}", pl.lit(prefix), pl.int_range(1, ROWS + 1)).alias("trade_id"),
        pl.int_range(1, ROWS + 1).cast(pl.String).alias("seq"),
    )


def _body(fmt: str, frame: pl.DataFrame) -> bytes:
    if fmt == "json":
        return json.dumps(frame.to_dicts()).encode()
    out = io.BytesIO()
    frame.write_ipc_stream(out)
    return out.getvalue()


def _stored_rows(frames: list[pl.DataFrame], dialect: str) -> tuple[list[list[tuple]], list]:
    """The batches as validation hands them to storage, then as the driver's tuples and as
    Arrow tables for ADBC."""
    catalogue = load_catalogue(Settings().catalogue_path)
    rules = build_rules(
        catalogue,
        {c.code: i + 1 for i, c in enumerate(catalogue.commodities)},
        Calendar(in_force()),
    )
    rows, tables = [], []
    received = dt.datetime.now(dt.UTC)
    for frame in frames:
        checked = validated_frame(
            frame.lazy(), rules, FxTable.from_rows([]), now=dt.datetime.now(dt.UTC)
        )
        good = stored_frame(checked.filter(pl.col(REJECT_CODE).is_null())).collect()
        assert good.height == ROWS
        keyed = good.with_columns(
            pl.lit(1).alias("exchange_id"),
            pl.lit(1).alias("batch_id"),
            pl.lit(0).alias("revision"),
            pl.lit(received, dtype=pl.Datetime("us", "UTC")).alias("received_at"),
        )
        rows.append(_tuples(keyed, INSTANT[dialect]))
        columns = [c for c in TRADE_COLUMNS if c in keyed.columns]
        arrow = keyed.select(
            pl.col(c).dt.convert_time_zone("UTC").dt.strftime(INSTANT[dialect])
            if dialect == "sqlite" and c in INSTANT_COLUMNS
            else pl.col(c).dt.convert_time_zone("UTC")
            if c in INSTANT_COLUMNS
            else pl.col(c).cast(PG_INT[c])
            if dialect == "postgresql" and c in PG_INT
            else pl.col(c)
            for c in columns
        )
        tables.append(arrow.to_arrow())
    return rows, tables


@pytest.mark.parametrize("fmt", FORMATS)
def test_push_batches_of_10000(benchmark, server, peer, fmt):
    dialect, raw_insert, adbc_insert = peer
    frames = [_live_day(fmt, n) for n in range(WARM + PUSHES)]
    bodies = [_body(fmt, frame) for frame in frames]
    rows, tables = _stored_rows(frames, dialect)
    headers = {"Authorization": f"Bearer {server.key}", "Content-Type": MEDIA[fmt]}
    with httpx.Client(base_url=server.url, timeout=120) as client:
        for body in bodies[:WARM]:
            assert client.post("/v1/trades", content=body, headers=headers).status_code == 200
        pending = iter(bodies[WARM:])
        pushed = []  # one push only when benchmarks are disabled (a smoke run)

        def push_one() -> None:
            answer = client.post("/v1/trades", content=next(pending), headers=headers)
            assert answer.status_code == 200 and answer.json()["accepted"] == ROWS, answer.text
            pushed.append(ROWS)

        started = time.perf_counter()
        benchmark.pedantic(push_one, rounds=PUSHES, iterations=1)
        push_seconds = time.perf_counter() - started
        pushes = len(pushed)
        started = time.perf_counter()
        for _ in range(pushes):
            assert client.get("/healthz").status_code == 200
        trivial_seconds = time.perf_counter() - started

    assert raw_insert(rows[:WARM]) == WARM * ROWS
    started = time.perf_counter()
    inserted = raw_insert(rows[WARM : WARM + pushes])
    raw_seconds = time.perf_counter() - started
    assert inserted == pushes * ROWS
    if fmt == FORMATS[0]:  # the ADBC database holds one format's batches, as a fresh table
        assert adbc_insert(tables[:WARM]) == WARM * ROWS
        started = time.perf_counter()
        assert adbc_insert(tables[WARM : WARM + pushes]) == pushes * ROWS
        adbc_rate: float | None = pushes * ROWS / (time.perf_counter() - started)
    else:
        adbc_rate = None

    push_rate = pushes * ROWS / push_seconds
    raw_rate = pushes * ROWS / raw_seconds
    ratio = push_rate / raw_rate
    verdict = "meets" if ratio >= TARGETS[dialect] else "misses"
    verdict = f"{verdict} the {TARGETS[dialect]} target" if fmt == "arrow" else "no target"
    driver = "sqlite3 executemany" if dialect == "sqlite" else "psycopg COPY"
    adbc = (
        f" ADBC adbc_ingest+commit {adbc_rate:,.0f} ticks/s;"
        f" push / ADBC {push_rate / adbc_rate:.2f};"
        if adbc_rate
        else ""
    )
    print(
        f"\n{fmt} ({dialect}, {pushes} pushes of {ROWS:,}, one day each):"
        f" push {push_rate:,.0f} ticks/s;"
        f" raw {driver} insert+commit {raw_rate:,.0f} ticks/s;{adbc}"
        f" push / raw insert {ratio:.2f} ({verdict})"
        f"\n{fmt}: pushes {pushes / push_seconds:,.1f}/s,"
        f" trivial GET /healthz {pushes / trivial_seconds:,.1f}/s,"
        f" ratio push/trivial {trivial_seconds / push_seconds:.3f}"
    )

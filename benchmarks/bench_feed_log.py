"""The feed log's throughput, each beside its peer in the same run.

Push: two uvicorn servers in subprocesses on 127.0.0.1 (one worker each; SQLite unless
``BCPI_BENCH_DATABASE_URL`` names another database), one storing each push before its
answer (direct), one appending it to NATS JetStream and answering 202 (feed log). One
keep-alive client pushes ``BCPI_BENCH_PUSHES`` batches (default 30) of 10,000 new trades
as Arrow IPC streams to each. Reported: ticks/s of each, and feed log / direct.

Consumer: the same kind of batches queued on the log, then stored into PostgreSQL by one
consumer in this process (each batch fetched, read, checked, archived and stored in one
transaction, then acknowledged), timed from the end of two warm-up batches to the last
batch stored, beside psycopg ``COPY`` of the same rows, already normalised, into an
identical database, one commit per batch (after the same warm-up). Reported: ticks/s of
each, and consumer / COPY.

Both need the NATS server (``BCPI_TEST_NATS_URL``, default nats://127.0.0.1:4222); the
consumer also PostgreSQL. Run:

    .venv/bin/pytest benchmarks/bench_feed_log.py --benchmark-enable -s
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import httpx
import pytest

from benchmarks.bench_ingest_http import _body, _database_url, _live_day, _stored_rows
from benchmarks.bench_ingest_store import ADMIN_URL, _empty_schema, postgres_peer
from core.catalogue import load_catalogue
from core.settings import Settings
from ingest.consumer import Consumer
from store.bootstrap import prepare_database
from store.db import make_engine, session_factory, session_scope
from store.reference import add_exchange
from tests.feed_log_support import NATS_URL, _nats_unreachable_reason, delete_stream
from tests.publication_server import serve

ROWS = 10_000
PUSHES = int(os.environ.get("BCPI_BENCH_PUSHES", "30"))
WARM = 2
MEDIA = "application/vnd.apache.arrow.stream"


@pytest.fixture(scope="module")
def stream_name():
    reason = _nats_unreachable_reason()
    if reason:
        pytest.skip(reason)
    name = f"BCPI_BENCH_{uuid.uuid4().hex[:10].upper()}"
    yield name
    asyncio.run(delete_stream(name))


def _prepared(url: str) -> str:
    """The database at the current schema with an exchange; that exchange's key."""
    engine = make_engine(url)
    prepare_database(engine, load_catalogue(Settings().catalogue_path))
    with session_scope(engine) as session:
        _, key = add_exchange(session, f"B{time.time_ns() % 10**8}", "benchmark exchange")
    engine.dispose()
    return key


def _pushes(url: str, key: str, bodies: list[bytes], status: int, benchmark=None) -> float:
    """Push ``bodies`` (after the warm-up ones); ticks/s."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": MEDIA}
    with httpx.Client(base_url=url, timeout=120) as client:
        for body in bodies[:WARM]:
            assert client.post("/v1/trades", content=body, headers=headers).status_code == status
        pending = iter(bodies[WARM:])
        pushed = []

        def push_one() -> None:
            answer = client.post("/v1/trades", content=next(pending), headers=headers)
            assert answer.status_code == status, answer.text
            pushed.append(ROWS)

        started = time.perf_counter()
        if benchmark is None:
            for _ in bodies[WARM:]:
                push_one()
        else:
            benchmark.pedantic(push_one, rounds=len(bodies) - WARM, iterations=1)
        return sum(pushed) / (time.perf_counter() - started)


def test_push_through_the_feed_log_beside_direct_push(benchmark, tmp_path_factory, stream_name):
    bodies = [_body("arrow", _live_day("arrow", n)) for n in range(WARM + PUSHES)]
    direct_root, log_root = tmp_path_factory.mktemp("direct"), tmp_path_factory.mktemp("log")
    direct_url, log_url = _database_url(direct_root), _database_url(log_root)
    if direct_url == log_url:  # one named database: the two servers take separate schemas
        pytest.skip("give the two servers separate databases (unset BCPI_BENCH_DATABASE_URL)")
    direct_key, log_key = _prepared(direct_url), _prepared(log_url)
    with serve(direct_url, archive_dir=str(direct_root / "archive")) as server:
        direct_rate = _pushes(server.url, direct_key, bodies, 200)
    with serve(
        log_url,
        archive_dir=str(log_root / "archive"),
        feed_log_url=NATS_URL,
        feed_log_stream=stream_name,
    ) as server:
        log_rate = _pushes(server.url, log_key, bodies, 202, benchmark)
    print(
        f"\narrow push ({PUSHES} pushes of {ROWS:,}): feed log {log_rate:,.0f} ticks/s"
        f" (202 once in JetStream); direct {direct_rate:,.0f} ticks/s (200 once committed);"
        f" feed log / direct {log_rate / direct_rate:.2f}"
    )


@pytest.fixture(scope="module")
def postgres_databases():
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    names = [f"bcpi_bench_log_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield [f"{base}/{name}" for name in names]
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_consumer_into_postgresql_beside_copy(
    benchmark, tmp_path_factory, stream_name, postgres_databases
):
    consumer_url, copy_url = postgres_databases
    root = tmp_path_factory.mktemp("consume")
    frames = [_live_day("arrow", n) for n in range(WARM + PUSHES)]
    key = _prepared(consumer_url)
    stream = f"{stream_name}_C"
    try:
        with serve(
            consumer_url,
            archive_dir=str(root / "archive"),
            feed_log_url=NATS_URL,
            feed_log_stream=stream,
        ) as server:
            headers = {"Authorization": f"Bearer {key}", "Content-Type": MEDIA}
            with httpx.Client(base_url=server.url, timeout=120) as client:
                for frame in frames:
                    answer = client.post(
                        "/v1/trades", content=_body("arrow", frame), headers=headers
                    )
                    assert answer.status_code == 202, answer.text
        settings = Settings(
            database_url=consumer_url,
            archive_dir=root / "archive",
            feed_log_url=NATS_URL,
            feed_log_stream=stream,
        )
        engine = make_engine(consumer_url)
        consumer = Consumer(
            settings, session_factory(engine), load_catalogue(settings.catalogue_path)
        )

        marks: dict[int, float] = {}

        async def until_stored() -> None:
            """The consumer from its start; timed from the end of the warm-up batches (its
            connection and first fetches) to the last batch stored."""
            stop = asyncio.Event()

            async def watch() -> None:
                while consumer.report.stored < WARM + PUSHES:
                    marks.setdefault(consumer.report.stored, time.perf_counter())
                    await asyncio.sleep(0.002)
                marks[WARM + PUSHES] = time.perf_counter()
                stop.set()

            watcher = asyncio.create_task(watch())
            await consumer.run(stop)
            await watcher

        benchmark.pedantic(lambda: asyncio.run(until_stored()), rounds=1, iterations=1)
        consumer_rate = PUSHES * ROWS / (marks[WARM + PUSHES] - marks[WARM])
        engine.dispose()
    finally:
        asyncio.run(delete_stream(stream))

    rows, _ = _stored_rows(frames, "postgresql")
    copy_target = _empty_schema(copy_url)
    assert postgres_peer(copy_target, rows[:WARM]) == WARM * ROWS
    started = time.perf_counter()
    assert postgres_peer(copy_target, rows[WARM:]) == PUSHES * ROWS
    copy_rate = PUSHES * ROWS / (time.perf_counter() - started)
    print(
        f"\nconsumer into PostgreSQL ({PUSHES} batches of {ROWS:,}, Arrow):"
        f" {consumer_rate:,.0f} ticks/s (read, checked, archived, stored, acknowledged);"
        f" psycopg COPY of the same rows {copy_rate:,.0f} ticks/s;"
        f" consumer / COPY {consumer_rate / copy_rate:.2f}"
    )

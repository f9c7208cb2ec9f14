"""Two ``bcpi serve`` processes on one database behave as one service.

Each test starts two servers on their own ports over the same fresh database (SQLite and
PostgreSQL) and checks what a client sees when its requests land on either:

- a read key's rate limit is one limit, counted across both processes;
- a push retried with the same ``Idempotency-Key`` on the other server gets the first
  answer, replayed, and its trades are stored once; the key with another payload is refused
  there; the same new key sent to both servers at once stores the batch once;
- an event-stream client on one server receives a value published after trades were pushed
  to the other, within seconds.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select

from cli.synthetic import EXCHANGES
from publication.fixing import compute
from store import models
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from store.reference import add_exchange, create_key
from tests.feeds_support import trade
from tests.scheduler_support import BEIJING, ingest_days, price_factor, write_trades

ROOT = Path(__file__).resolve().parent.parent
BCPI = str(Path(sys.executable).with_name("bcpi"))
LIMIT = 6
POLL_SECONDS = 0.2
BASE = dt.date(2025, 1, 2)
NEXT_DAY = dt.date(2025, 1, 3)  # the publication day after the base date


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _span_far_from_its_end(shortest: int = 3600, margin: int = 300) -> int:
    """A rate window length (seconds) whose current fixed window ends more than ``margin``
    seconds from now: the counters cannot reset in the middle of a test."""
    span = shortest
    while span - time.time() % span < margin:
        span += 1
    return span


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path


def _start(env: dict[str, str], log: Path) -> Server:
    port = _free_port()
    with log.open("w") as sink:
        process = subprocess.Popen(
            [BCPI, "serve", "--port", str(port)], env=env, cwd=ROOT, stdout=sink, stderr=sink
        )
    return Server(f"http://127.0.0.1:{port}", process, log)


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert server.process.poll() is None, server.log.read_text()[-3000:]
        assert time.monotonic() < deadline, server.log.read_text()[-3000:]
        time.sleep(0.2)


@dataclass
class Pair:
    one: Server
    two: Server
    engine: Engine
    span: int


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def shared_database(request, tmp_path_factory) -> Iterator[str]:
    """One fresh database per backend for the whole module (the tests use keys and
    exchanges of their own), copied from the session's migrated template."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path_factory.mktemp("two-servers") / "bcpi.db"
        for suffix in ("", "-wal"):
            if Path(f"{template}{suffix}").exists():
                shutil.copyfile(f"{template}{suffix}", f"{path}{suffix}")
        yield f"sqlite:///{path}"
        return
    import psycopg
    from psycopg import sql

    admin_url = request.getfixturevalue("postgres_admin_url")
    template = request.getfixturevalue("postgres_template")
    name = f"bcpi_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    try:
        base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="module")
def servers(shared_database: str, catalogue, tmp_path_factory) -> Iterator[Pair]:
    """Two ``bcpi serve`` processes on the module's database."""
    tmp_path = tmp_path_factory.mktemp("servers")
    engine = make_engine(shared_database)
    prepare_database(engine, catalogue)
    span = _span_far_from_its_end()
    env = {
        **os.environ,
        "BCPI_DATABASE_URL": shared_database,
        "BCPI_ARCHIVE_DIR": str(tmp_path / "archive"),
        "BCPI_LOG_FORMAT": "json",
        "BCPI_READ_RATE_LIMIT": str(LIMIT),
        "BCPI_RATE_LIMIT_WINDOW_SECONDS": str(span),
        "BCPI_STREAM_POLL_SECONDS": str(POLL_SECONDS),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    started = [_start(env, tmp_path / f"server{n}.log") for n in (1, 2)]
    try:
        for server in started:
            _wait_ready(server)
        yield Pair(*started, engine=engine, span=span)
    finally:
        for server in started:
            server.process.terminate()
        for server in started:
            try:
                server.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()
        engine.dispose()


def test_a_rate_limit_is_one_limit_across_both_servers(servers: Pair):
    with session_scope(servers.engine) as session:
        key, other_key = create_key(session, "read"), create_key(session, "read")
    headers = {"Authorization": f"Bearer {key}"}
    answers = []
    for n in range(LIMIT + 4):  # alternately to server 1 and server 2
        server = (servers.one, servers.two)[n % 2]
        answers.append(httpx.get(server.url + "/v1/indices", headers=headers, timeout=30))

    # LIMIT requests in the window are served, whichever server took them: three each.
    # Each answer counts down what is left of the one limit: 5, 4, 3, 2, 1, 0.
    assert [a.status_code for a in answers] == [200] * LIMIT + [429] * 4
    assert [a.headers["X-RateLimit-Remaining"] for a in answers[:LIMIT]] == [
        str(LIMIT - n) for n in range(1, LIMIT + 1)
    ]
    for answer in answers[LIMIT:]:
        assert answer.json()["error"] == "RateLimited"
        assert 0 < int(answer.headers["Retry-After"]) <= servers.span
    # Another key has its own limit, on either server.
    other = httpx.get(
        servers.two.url + "/v1/indices", headers={"Authorization": f"Bearer {other_key}"}
    )
    assert other.status_code == 200
    assert other.headers["X-RateLimit-Remaining"] == str(LIMIT - 1)


def _csv(rows: list[dict]) -> bytes:
    names = list(rows[0])
    lines = [",".join(names), *(",".join(row[n] or "" for n in names) for row in rows)]
    return ("\n".join(lines) + "\n").encode()


def _push(server: Server, key: str, rows: list[dict], idempotency_key: str) -> httpx.Response:
    return httpx.post(
        server.url + "/v1/trades",
        content=_csv(rows),
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "text/csv",
            "Idempotency-Key": idempotency_key,
        },
        timeout=60,
    )


def _stored(engine: Engine, trade_ids: list[str]) -> int:
    with session_scope(engine) as session:
        return session.scalar(
            select(func.count())
            .select_from(models.Trade)
            .where(models.Trade.trade_id.in_(trade_ids))
        )


def test_an_idempotency_key_holds_across_both_servers(servers: Pair):
    with session_scope(servers.engine) as session:
        _, key = add_exchange(session, "TWOA", "Two-server exchange A")
    rows = [trade("T1"), trade("T2"), trade("T3", price="-1")]  # two valid, one rejected

    first = _push(servers.one, key, rows, "batch-1")
    assert first.status_code == 200, first.text
    assert first.json()["accepted"] == 2 and first.json()["rejected"] == 1
    assert "Idempotent-Replayed" not in first.headers

    retry = _push(servers.two, key, rows, "batch-1")
    assert retry.status_code == 200
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()  # the first answer, not "2 duplicates"
    assert _stored(servers.engine, ["T1", "T2", "T3"]) == 2

    other = _push(servers.two, key, [trade("T4")], "batch-1")
    assert other.status_code == 409
    assert other.json()["error"] == "IdempotencyConflict"
    assert _stored(servers.engine, ["T4"]) == 0


def test_one_new_key_sent_to_both_servers_at_once_stores_one_batch(servers: Pair):
    with session_scope(servers.engine) as session:
        _, key = add_exchange(session, "TWOB", "Two-server exchange B")
    rows = [trade(f"R{n}") for n in range(2000)]  # long enough to check for all four to overlap
    targets = [servers.one, servers.two] * 2  # two requests on each server, all at once
    with concurrent.futures.ThreadPoolExecutor(len(targets)) as pool:
        answers = list(pool.map(lambda s: _push(s, key, rows, "batch-2"), targets))
    assert [a.status_code for a in answers] == [200] * 4, [a.text[:300] for a in answers]
    assert all(a.json() == answers[0].json() for a in answers)
    assert answers[0].json()["accepted"] == 2000
    # One answer is the committed push's, the three others its replay.
    replayed = sorted(a.headers.get("Idempotent-Replayed", "false") for a in answers)
    assert replayed == ["false", "true", "true", "true"]
    assert _stored(servers.engine, [row["trade_id"] for row in rows]) == 2000


def _first_event(url: str, received: list, connected: threading.Event) -> None:
    with httpx.stream(
        "GET", url + "/v1/stream", params={"codes": "COTTON", "limit": 1}, timeout=30
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        connected.set()
        event: dict[str, str] = {}
        for line in response.iter_lines():
            if line == "" and "data" in event:
                received.append((time.monotonic(), event))
                return
            if line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                event[name] = value


def test_a_stream_on_one_server_sees_what_is_published_after_a_push_to_the_other(
    servers: Pair, catalogue, tmp_path: Path
):
    keys = {}
    with session_scope(servers.engine) as session:
        for code, name in EXCHANGES.items():
            keys[code] = add_exchange(session, code, name)[1]
    ingest_days(servers.engine, catalogue, tmp_path / "base", [BASE])
    with session_scope(servers.engine) as session:
        compute(session, BASE, BASE, now=dt.datetime.combine(BASE, dt.time(16), BEIJING))

    received: list = []
    connected = threading.Event()
    listener = threading.Thread(target=_first_event, args=(servers.two.url, received, connected))
    listener.start()
    assert connected.wait(10)

    # The next day's trades of every exchange arrive through server 1 ...
    for path in write_trades(tmp_path / "next", [NEXT_DAY]):
        answer = httpx.post(
            servers.one.url + "/v1/trades",
            content=path.read_bytes(),
            headers={"Authorization": f"Bearer {keys[path.stem]}", "Content-Type": "text/csv"},
            timeout=60,
        )
        assert answer.status_code == 200 and answer.json()["rejected"] == 0, answer.text
    # ... and the fixing of that day is published by another process (here: this one).
    with session_scope(servers.engine) as session:
        compute(
            session, NEXT_DAY, NEXT_DAY, now=dt.datetime.combine(NEXT_DAY, dt.time(16), BEIJING)
        )
    published = time.monotonic()
    listener.join(30)
    assert not listener.is_alive()

    arrived, event = received[0]
    value = json.loads(event["data"])
    # write_trades: every VWAP is level × price_factor(day) × 1.0005, so the commodity index
    # is price_factor(day) / price_factor(BASE) × 1000.
    expected = price_factor(NEXT_DAY) / price_factor(BASE) * 1000.0
    assert (value["code"], value["date"], value["status"]) == ("COTTON", "2025-01-03", "final")
    assert value["value"] == pytest.approx(expected, rel=1e-9)
    assert arrived - published < 5  # polled every 0.2 s: well within seconds
    print(f"\nstream on server 2 saw the value {arrived - published:.2f} s after publication")

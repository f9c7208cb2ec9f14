"""Crash cycles through the feed log: ``bcpi consume`` SIGKILLed mid-batch, and ``bcpi
serve`` SIGKILLed around the append, while the client sends every batch again (same
Idempotency-Key) until it is acknowledged. Afterwards every acknowledged trade is stored
exactly once, every batch by exactly one transaction, and nothing else is stored.

``BCPI_FEED_LOG_CYCLES`` sets the cycles of each test (default 10).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from store import models
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from tests.feed_log_support import (
    NATS_URL,
    drain,
    exchange_key,
    log_settings,
    statuses,
    stored_trade_ids,
    stream,  # noqa: F401  (fixture)
    trade,
)
from tests.reliability.server import BCPI, Server, _die_with_parent, base_environment

CYCLES = int(os.environ.get("BCPI_FEED_LOG_CYCLES", "10"))
BATCHES, ROWS = 4, 20
ACK_WAIT = 2.0
KILL_TIMEOUT = 90.0


@dataclass
class Sent:
    """What the client holds: the batches sent and the trades acknowledged (202)."""

    acknowledged: set[str] = field(default_factory=set)
    batches: set[str] = field(default_factory=set)
    retries: int = 0


def _batch(rng: random.Random, cycle: int, b: int) -> tuple[list[dict], list[str]]:
    rows, valid = [], []
    for r in range(ROWS):
        trade_id = f"c{cycle:03d}b{b}r{r:02d}"
        bad = rng.random() < 0.05
        rows.append(trade(trade_id, r, price="-1" if bad else str(3300 + r)))
        if not bad:
            valid.append(trade_id)
    return rows, valid


@pytest.fixture
def crash_db(tmp_path, catalogue):
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    engine = make_engine(url)
    prepare_database(engine, catalogue)
    yield url, engine
    engine.dispose()


def _environment(url: str, tmp_path: Path, stream_name: str) -> dict[str, str]:
    return base_environment(url, tmp_path / "archive") | {
        "BCPI_FEED_LOG_URL": NATS_URL,
        "BCPI_FEED_LOG_STREAM": stream_name,
        "BCPI_FEED_LOG_ACK_WAIT_SECONDS": str(ACK_WAIT),
    }


def _check(engine, sent: Sent, what: str, kills: int) -> None:
    ids = stored_trade_ids(engine)
    lost = sent.acknowledged - set(ids)
    doubled = len(ids) - len(set(ids))
    phantom = set(ids) - sent.acknowledged
    print(
        f"\n{what}: {CYCLES} cycles, {kills} SIGKILLs, {len(sent.batches)} batches,"
        f" {len(sent.acknowledged)} acknowledged trades, {len(ids)} stored;"
        f" lost {len(lost)}, doubled {doubled}, never acknowledged {len(phantom)}"
    )
    assert (len(lost), doubled, len(phantom)) == (0, 0, 0), (sorted(lost)[:5], sorted(phantom)[:5])
    assert statuses(engine) == {"stored": len(sent.batches)}
    with session_scope(engine) as session:  # each batch stored by one transaction only
        assert session.scalar(select(func.count()).select_from(models.IngestBatch)) == len(
            sent.batches
        )


def test_consumers_killed_mid_batch_lose_and_double_nothing(
    crash_db,
    tmp_path,
    catalogue,
    stream,  # noqa: F811
):
    url, engine = crash_db
    rng = random.Random(11)
    settings = log_settings(url, tmp_path, stream)
    env = _environment(url, tmp_path, stream)
    sent, kills = Sent(), 0
    log = tmp_path / "consume.log"
    with TestClient(create_app(settings, migrate=False)) as api:
        api.headers["X-API-Key"] = exchange_key(engine)
        for cycle in range(CYCLES):
            for b in range(BATCHES):
                rows, valid = _batch(rng, cycle, b)
                key = f"c{cycle}-b{b}"
                answer = api.post("/v1/trades", json=rows, headers={"Idempotency-Key": key})
                assert answer.status_code == 202, answer.text
                sent.acknowledged |= set(valid)
                sent.batches.add(answer.json()["batch_id"])
            faults = {"BCPI_FAULT_POINT": "mid_batch", "BCPI_FAULT_HIT": str(rng.randint(1, 3))}
            with open(log, "ab") as out:
                consumer = subprocess.Popen(
                    [*BCPI, "consume"],
                    env=env | faults,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,
                )
            try:
                consumer.wait(timeout=KILL_TIMEOUT)
            except subprocess.TimeoutExpired:
                consumer.kill()
                pytest.fail(
                    f"cycle {cycle}: the consumer was not killed:\n{log.read_text()[-2000:]}"
                )
            assert consumer.returncode == -signal.SIGKILL, log.read_text()[-2000:]
            kills += 1
    assert kills == CYCLES
    assert statuses(engine).get("queued", 0) > 0  # the kills left work behind
    drain(settings, engine, catalogue, until_idle=ACK_WAIT + 2)
    _check(engine, sent, "bcpi consume killed mid-batch", kills)


def test_servers_killed_around_the_append_lose_and_double_nothing(
    crash_db,
    tmp_path,
    catalogue,
    stream,  # noqa: F811
):
    url, engine = crash_db
    rng = random.Random(13)
    key = exchange_key(engine)
    server = Server(url, tmp_path / "archive", tmp_path / "serve.log")
    env = _environment(url, tmp_path, stream)
    points = ("after_publish", "before_publish")
    kills = 0

    def start() -> None:
        faults = {}
        if kills < CYCLES:
            faults = {
                "BCPI_FAULT_POINT": points[kills % 2],
                "BCPI_FAULT_HIT": str(rng.randint(1, BATCHES)),
            }
        server.start(env | faults)

    sent = Sent()
    start()
    try:
        with httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0)) as client:
            cycle = 0
            while kills < CYCLES or cycle < CYCLES:
                for b in range(BATCHES):
                    rows, valid = _batch(rng, cycle, b)
                    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": f"s{cycle}-{b}"}
                    while True:
                        try:
                            answer = client.post(
                                f"{server.url}/v1/trades", json=rows, headers=headers
                            )
                        except httpx.HTTPError:
                            assert server.wait_dead(10), "no answer, yet the server lives"
                            kills += 1
                            sent.retries += 1
                            start()
                            continue
                        if answer.status_code == 503:
                            time.sleep(0.2)
                            continue
                        assert answer.status_code == 202, answer.text
                        break
                    sent.acknowledged |= set(valid)
                    sent.batches.add(answer.json()["batch_id"])
                cycle += 1
    finally:
        server.stop()
    assert kills == CYCLES and sent.retries == CYCLES
    drain(log_settings(url, tmp_path, stream), engine, catalogue, until_idle=1.5)
    _check(engine, sent, "bcpi serve killed around the append", kills)


def test_bcpi_consume_stops_cleanly_on_sigterm_and_sigint(crash_db, tmp_path, stream):  # noqa: F811
    url, _ = crash_db
    env = _environment(url, tmp_path, stream)
    for number in (signal.SIGTERM, signal.SIGINT):
        log = tmp_path / f"consume-{number}.log"
        with open(log, "wb") as out:
            consumer = subprocess.Popen(
                [*BCPI, "consume"], env=env, stderr=out, preexec_fn=_die_with_parent
            )
        deadline = time.monotonic() + 60
        while "consuming stream" not in log.read_text():
            assert consumer.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        time.sleep(0.5)  # in its fetch loop
        consumer.send_signal(number)
        assert consumer.wait(timeout=15) == 0, log.read_text()
        assert "stopped: 0 batches stored" in log.read_text()

"""The feed log against a real NATS JetStream server: a push answers 202 once the stream
holds the batch, ``bcpi consume``'s consumer stores it once, re-sent batches are one batch,
``atomic=true`` refuses before the log, a batch refused at store time is dead-lettered (and
counted in feed health) and never delivered again, consumers share the work, and pushes
made while no consumer runs (a minute; ``BCPI_FEED_LOG_DOWNTIME_SECONDS``) all land once
one does."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

import nats
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from api.app import create_app
from ingest import consumer as consumer_module
from ingest.feed_log import ATOMIC, BATCH_ID, EXCHANGE, FORMAT, MSG_ID, RECEIVED_AT, LogNames
from tests.feed_log_support import (
    NATS_URL,
    drain,
    exchange_key,
    log_settings,
    statuses,
    stored_trade_ids,
    stream,  # noqa: F401  (fixture)
    stream_counts,
    trade,
)

DOWNTIME_SECONDS = float(os.environ.get("BCPI_FEED_LOG_DOWNTIME_SECONDS", "60"))
"""How long no consumer runs while pushes go on."""


@pytest.fixture
def settings(database_url, tmp_path, stream):  # noqa: F811
    return log_settings(database_url, tmp_path, stream)


@pytest.fixture
def api(settings, engine):
    key = exchange_key(engine)
    with TestClient(create_app(settings, migrate=False)) as client:
        client.headers["X-API-Key"] = key
        yield client


def test_a_push_is_queued_then_stored_with_the_counts_of_a_direct_push(
    api,
    settings,
    engine,
    catalogue,
    stream,  # noqa: F811
):
    rows = [trade(f"T{i}", i) for i in range(5)] + [trade("BAD", 9, price="-5")]
    answer = api.post("/v1/trades", json=rows)
    assert answer.status_code == 202, answer.text
    queued = answer.json()
    assert queued["status"] == "queued"
    assert queued["rejected"] == 1
    assert [(r["row"], r["trade_id"], r["field"]) for r in queued["rejections"]] == [
        (6, "BAD", "price")
    ]
    # 2025-01-14 is long before the correction window: the direct push's warning, already.
    assert [w["code"] for w in queued["warnings"]] == ["after_correction_window"]
    assert queued["warnings"][0]["count"] == 5
    batch = queued["batch_id"]
    assert asyncio.run(stream_counts(stream)) == {LogNames(stream).trades("FLX"): 1}
    assert api.get(f"/v1/batches/{batch}").json()["status"] == "queued"
    assert stored_trade_ids(engine) == []

    report = drain(settings, engine, catalogue)
    assert (report.stored, report.dead) == (1, 0)
    status = api.get(f"/v1/batches/{batch}").json()
    assert status["status"] == "stored" and status["exchange"] == "FLX"
    result = status["result"]
    assert (result["accepted"], result["duplicates"], result["rejected"]) == (5, 0, 1)
    assert result["warnings"][0]["count"] == 5
    assert sorted(stored_trade_ids(engine)) == [f"T{i}" for i in range(5)]
    assert asyncio.run(stream_counts(stream)) == {}  # stored and acknowledged: gone

    revisions = [
        {"trade_id": "T0", "action": "cancel"},
        {**trade("T1", 1, price="3399"), "action": "amend"},
        trade("T2", 2),  # a duplicate
    ]
    batch = api.post("/v1/trades", json=revisions).json()["batch_id"]
    drain(settings, engine, catalogue)
    result = api.get(f"/v1/batches/{batch}").json()["result"]
    assert (result["cancelled"], result["amended"], result["duplicates"]) == (1, 1, 1)
    assert result["accepted"] == 2


def test_a_re_sent_batch_is_one_batch_stored_once(api, settings, engine, catalogue, stream):  # noqa: F811
    rows = [trade(f"R{i}", i) for i in range(4)]
    first = api.post("/v1/trades", json=rows)
    again = api.post("/v1/trades", json=rows)
    assert first.status_code == again.status_code == 202
    assert first.json()["batch_id"] == again.json()["batch_id"]
    assert again.headers["Idempotent-Replayed"] == "true"

    keyed = [trade(f"K{i}", i) for i in range(3)]
    headers = {"Idempotency-Key": "batch-7"}
    one = api.post("/v1/trades", json=keyed, headers=headers).json()["batch_id"]
    two = api.post("/v1/trades", json=keyed, headers=headers).json()["batch_id"]
    assert one == two
    other = api.post("/v1/trades", json=keyed[:1], headers=headers)
    assert other.status_code == 409
    # JetStream holds two batches, not four: the API and the stream both knew the re-sends.
    assert sum(asyncio.run(stream_counts(stream)).values()) == 2

    drain(settings, engine, catalogue)
    assert sorted(stored_trade_ids(engine)) == sorted(
        [f"R{i}" for i in range(4)] + ["K0", "K1", "K2"]
    )
    later = api.post("/v1/trades", json=keyed, headers=headers)
    assert later.json()["status"] == "stored" and later.json()["batch_id"] == one
    assert api.post("/v1/trades", json=rows).json()["status"] == "stored"
    assert drain(settings, engine, catalogue).stored == 0
    assert statuses(engine) == {"stored": 2}


def test_atomic_refuses_a_batch_with_an_invalid_row_before_the_log(api, engine, stream):  # noqa: F811
    rows = [trade("A1", 1), trade("A2", 2, price="abc")]
    answer = api.post("/v1/trades", params={"atomic": "true"}, json=rows)
    assert answer.status_code == 422
    assert answer.json()["error"] == "BatchRejected"
    assert answer.json()["detail"]["rejected"] == 1
    assert asyncio.run(stream_counts(stream)) == {}
    assert statuses(engine) == {}


async def _publish_by_hand(stream_name: str, headers: dict[str, str], data: bytes) -> None:
    nc = await nats.connect(NATS_URL)
    try:
        await nc.jetstream().publish(LogNames(stream_name).trades("FLX"), data, headers=headers)
    finally:
        await nc.close()


def test_a_batch_refused_at_store_time_is_dead_lettered_counted_and_never_redelivered(
    api,
    settings,
    engine,
    catalogue,
    stream,  # noqa: F811
):
    # Valid when checked (a cancel is well formed), refused when stored: no such trade.
    refused = api.post(
        "/v1/trades",
        params={"atomic": "true"},
        json=[trade("D1", 1), {"trade_id": "NEVER-SENT", "action": "cancel"}],
    )
    assert refused.status_code == 202 and refused.json()["rejected"] == 0
    headers = {
        MSG_ID: "by-hand-1",
        BATCH_ID: "hand-made-1",
        EXCHANGE: "FLX",
        FORMAT: "json",
        ATOMIC: "0",
        RECEIVED_AT: "2025-01-14T02:00:00+00:00",
    }
    asyncio.run(_publish_by_hand(stream, headers, b"not deflated at all"))
    good = api.post("/v1/trades", json=[trade("D2", 2)]).json()["batch_id"]

    report = drain(settings, engine, catalogue)
    assert (report.stored, report.dead) == (1, 2)
    assert api.get(f"/v1/batches/{good}").json()["status"] == "stored"
    dead = api.get(f"/v1/batches/{refused.json()['batch_id']}").json()
    assert dead["status"] == "dead" and dead["reason"].startswith("BatchRejected")
    assert "unknown_trade" in dead["reason"]
    hand = api.get("/v1/batches/hand-made-1").json()
    assert hand["status"] == "dead" and "cannot be read" in hand["reason"]
    assert stored_trade_ids(engine) == ["D2"]  # nothing of the atomic batch

    health = api.get("/v1/feeds/health").json()["exchanges"]
    assert [(e["code"], e["dead_batches"], e["queued_batches"]) for e in health] == [("FLX", 2, 0)]
    names = LogNames(stream)
    assert asyncio.run(stream_counts(stream)) == {names.dead: 2}  # the dead letters, kept
    again = drain(settings, engine, catalogue, until_idle=settings.feed_log_ack_wait_seconds + 1)
    assert (again.stored, again.dead, again.skipped) == (0, 0, 0)


def test_a_database_failure_brings_the_batch_back_later(api, settings, engine, catalogue):
    calls = []

    def failing_once(*args):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return consumer_module.store_message(*args)

    batch = api.post("/v1/trades", json=[trade("F1")]).json()["batch_id"]
    report = drain(settings, engine, catalogue, until_idle=4, store=failing_once)
    assert (report.retried, report.stored, report.dead) == (1, 1, 0)
    assert api.get(f"/v1/batches/{batch}").json()["status"] == "stored"
    assert stored_trade_ids(engine) == ["F1"]


def test_two_consumers_share_the_work(api, settings, engine, catalogue):
    sent = []
    for b in range(16):
        rows = [trade(f"S{b}-{i}", i) for i in range(50)]
        sent += [r["trade_id"] for r in rows]
        assert api.post("/v1/trades", json=rows).status_code == 202
    reports = [None, None]

    def run(n: int) -> None:
        reports[n] = drain(settings, engine, catalogue, until_idle=2)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert all(r.stored > 0 for r in reports), [r.stored for r in reports]
    assert sum(r.stored for r in reports) == 16
    assert sorted(stored_trade_ids(engine)) == sorted(sent)
    assert statuses(engine) == {"stored": 16}


def test_pushes_made_while_no_consumer_runs_all_land(api, settings, engine, catalogue):
    stop = asyncio.Event()
    box = {}

    def run() -> None:
        async def main():
            box["loop"] = asyncio.get_running_loop()
            return await consumer_module.Consumer(settings, api.app.state.sessions, catalogue).run(
                stop
            )

        box["report"] = asyncio.run(main())

    worker = threading.Thread(target=run)
    worker.start()
    acknowledged = []

    def push(b: int) -> None:
        rows = [trade(f"P{b}-{i}", i) for i in range(10)]
        answer = api.post("/v1/trades", json=rows, headers={"Idempotency-Key": f"p-{b}"})
        assert answer.status_code == 202
        acknowledged.extend(r["trade_id"] for r in rows)

    for b in range(4):
        push(b)
    while "loop" not in box:
        time.sleep(0.05)
    box["loop"].call_soon_threadsafe(stop.set)  # the consumer stops; pushes go on
    worker.join(timeout=60)
    batches, ends = 4, time.monotonic() + DOWNTIME_SECONDS
    while time.monotonic() < ends:
        push(batches)
        batches += 1
        time.sleep(0.5)
    assert statuses(engine).get("queued", 0) >= batches - 4 >= 2
    drain(settings, engine, catalogue)
    assert sorted(stored_trade_ids(engine)) == sorted(acknowledged)
    assert statuses(engine) == {"stored": batches}


def test_without_a_feed_log_a_push_is_stored_before_its_answer(engine, database_url, tmp_path):
    from tests.support_api import settings_for

    key = exchange_key(engine)
    with TestClient(create_app(settings_for(database_url, tmp_path), migrate=False)) as client:
        answer = client.post("/v1/trades", json=[trade("N1")], headers={"X-API-Key": key})
        assert answer.status_code == 200 and answer.json()["accepted"] == 1
        stored = client.get(f"/v1/batches/{answer.json()['batch_id']}", headers={"X-API-Key": key})
        assert stored.json()["status"] == "stored"
        assert json.loads(stored.text)["result"]["accepted"] == 1
    assert stored_trade_ids(engine) == ["N1"]


def test_an_unreachable_feed_log_answers_503_and_stores_nothing(engine, database_url, tmp_path):
    from tests.feed_log_support import free_port_url

    settings = log_settings(database_url, tmp_path, "BCPI_NOWHERE", feed_log_url=free_port_url())
    key = exchange_key(engine)
    with TestClient(create_app(settings, migrate=False)) as client:
        headers = {"X-API-Key": key, "Idempotency-Key": "down-1"}
        started = time.monotonic()
        answer = client.post("/v1/trades", json=[trade("U1")], headers=headers)
        assert answer.status_code == 503 and answer.json()["error"] == "FeedLogUnavailable"
        assert time.monotonic() - started < 15
    assert stored_trade_ids(engine) == [] and statuses(engine) == {"queued": 1}

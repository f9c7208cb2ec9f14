"""A batch is read and checked before its write transaction opens: while one exchange's
batch is still being validated, another exchange's push and any other writer go through,
and a lock held past the busy timeout answers 503 with nothing stored, never 500."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest
from sqlalchemy import insert

import ingest.batch
from store import models
from store.db import make_engine, session_scope
from tests.feeds_support import client_for, exchange_key, push, stored_counts, stored_trades, trade

SLOW, FAST = "SLOWX", "FASTX"
WAIT = 30  # seconds; generous bounds, never reached when the code is right


@pytest.fixture
def validation_gate(monkeypatch):
    """Holds the check of every batch of exchange ``SLOW`` until ``release`` is set;
    ``validating`` is set once such a check has begun."""
    validating, release = threading.Event(), threading.Event()
    check = ingest.batch.check_batch

    def gated(ctx, feed, first_row=1):
        if ctx.exchange_code == SLOW:
            validating.set()
            assert release.wait(WAIT), "the gated check was never released"
        return check(ctx, feed, first_row)

    monkeypatch.setattr(ingest.batch, "check_batch", gated)
    yield validating, release
    release.set()


def _in_background(call) -> tuple[threading.Thread, list]:
    out: list = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    return thread, out


def _rows(prefix: str, n: int) -> list[dict]:
    return [trade(f"{prefix}-{i}", price=str(3000 + i % 500)) for i in range(n)]


def test_another_exchanges_push_is_stored_while_a_big_batch_is_validated(
    engine, database_url, tmp_path, validation_gate
):
    validating, release = validation_gate
    slow_key, fast_key = exchange_key(engine, SLOW), exchange_key(engine, FAST)
    with client_for(database_url, tmp_path / "archive", sqlite_busy_timeout_ms=500) as client:
        slow, slow_answer = _in_background(lambda: push(client, slow_key, _rows("S", 5000)))
        assert validating.wait(WAIT)

        fast = push(client, fast_key, _rows("F", 3))
        assert fast.status_code == 200, fast.text
        assert fast.json()["accepted"] == 3
        assert set(stored_trades(engine, FAST)) == {"F-0", "F-1", "F-2"}
        assert slow.is_alive(), "the big batch finished before the small one was stored"
        assert stored_trades(engine, SLOW) == {}

        release.set()
        slow.join(WAIT)
    assert slow_answer[0].status_code == 200, slow_answer[0].text
    assert slow_answer[0].json()["accepted"] == 5000
    assert len(stored_trades(engine, SLOW)) == 5000


def test_no_write_lock_is_held_while_a_batch_is_validated(
    engine, database_url, tmp_path, validation_gate
):
    validating, release = validation_gate
    slow_key = exchange_key(engine, SLOW)
    impatient = make_engine(database_url, busy_timeout_ms=200)
    try:
        with client_for(database_url, tmp_path / "archive") as client:
            slow, answer = _in_background(lambda: push(client, slow_key, _rows("S", 10)))
            assert validating.wait(WAIT)
            started = time.monotonic()
            with session_scope(impatient) as session:
                session.add(models.Exchange(code="OTHER", name="Another writer"))
            assert time.monotonic() - started < 5
            release.set()
            slow.join(WAIT)
    finally:
        impatient.dispose()
    assert answer[0].status_code == 200, answer[0].text
    assert answer[0].json()["accepted"] == 10


def test_an_fx_rate_loaded_during_validation_applies_to_the_batch(
    engine, database_url, tmp_path, validation_gate
):
    validating, release = validation_gate
    slow_key = exchange_key(engine, SLOW)
    usd = trade("M1", commodity="METHANOL", price="300", currency="USD", quantity="500")
    with client_for(database_url, tmp_path / "archive") as client:
        slow, answer = _in_background(lambda: push(client, slow_key, [usd]))
        assert validating.wait(WAIT)
        with session_scope(engine) as session:
            session.add(models.FxRate(date=dt.date(2025, 3, 3), currency="USD", cny_per_unit=7.2))
        release.set()
        slow.join(WAIT)
    assert answer[0].status_code == 200, answer[0].text
    assert (answer[0].json()["accepted"], answer[0].json()["held"]) == (1, 0)
    stored = stored_trades(engine, SLOW)["M1"]
    assert stored.status == "active"
    assert stored.price == pytest.approx(300 * 7.2)


def test_a_push_that_waits_out_the_lock_gets_503_and_its_retry_is_stored(
    engine, database_url, tmp_path, validation_gate
):
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL has no database-wide write lock")
    validating, release = validation_gate
    key = exchange_key(engine, SLOW)
    before = stored_counts(engine)
    idempotent = {"Idempotency-Key": "busy-1"}
    with (
        client_for(database_url, tmp_path / "archive", sqlite_busy_timeout_ms=100) as client,
        engine.connect() as holder,
    ):
        slow, answer = _in_background(lambda: push(client, key, _rows("S", 3), headers=idempotent))
        assert validating.wait(WAIT)
        holder.begin()
        holder.execute(insert(models.Exchange).values(code="HOLDER", name="Holds the lock"))
        release.set()
        slow.join(WAIT)
        holder.rollback()
        assert answer[0].status_code == 503, answer[0].text
        assert answer[0].json()["error"] == "DatabaseBusy"
        assert answer[0].headers["Retry-After"] == "1"
        assert stored_counts(engine) == before

        again = push(client, key, _rows("S", 3), headers=idempotent)
    assert again.status_code == 200, again.text
    assert again.json()["accepted"] == 3
    assert stored_counts(engine)["trades"] == before["trades"] + 3


def test_atomic_and_idempotent_pushes_still_answer_as_before(engine, database_url, tmp_path):
    key = exchange_key(engine, FAST)
    bad = [*_rows("A", 2), trade("A-bad", price="-1")]
    with client_for(database_url, tmp_path / "archive") as client:
        refused = push(client, key, bad, params={"atomic": "true"})
        assert refused.status_code == 422
        assert stored_trades(engine, FAST) == {}

        first = push(client, key, _rows("I", 2), headers={"Idempotency-Key": "k-1"})
        replay = push(client, key, _rows("I", 2), headers={"Idempotency-Key": "k-1"})
    assert first.status_code == replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert json.loads(replay.content) == json.loads(first.content)
    assert len(stored_trades(engine, FAST)) == 2

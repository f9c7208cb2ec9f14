"""GET /v1/feeds/health: last batch, the day's counts and rejection rate, sequence gaps."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.feeds_support import client_for, exchange_key, push, role_key, trade


@pytest.fixture
def api(engine, database_url, tmp_path):
    with client_for(database_url, tmp_path / "archive") as client:
        client.engine = engine
        yield client


def test_health_reports_counts_rejections_and_sequence_gaps(api):
    bjcx = exchange_key(api.engine, "BJCX")
    exchange_key(api.engine, "CBEEX")
    admin = role_key(api.engine, "admin")
    # seq 1 2 3 6 7 10, then a cancel with seq 11 and a rejected row
    push(api, bjcx, [trade(f"T{n}", seq=str(n)) for n in (1, 2, 3, 6)])
    push(
        api,
        bjcx,
        [
            trade("T7", seq="7"),
            trade("T10", seq="10"),
            trade("T2", seq="2"),  # a re-sent trade: a duplicate, its seq seen twice
            trade("BAD", price="-1", seq="12"),
        ],
    )
    push(api, bjcx, [{"trade_id": "T1", "action": "cancel", "seq": "11"}])

    answer = api.get("/v1/feeds/health", headers={"X-API-Key": admin})
    assert answer.status_code == 200
    body = answer.json()
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    assert body["date"] == today.isoformat() and body["timezone"] == "Asia/Shanghai"
    by_code = {e["code"]: e for e in body["exchanges"]}
    health = by_code["BJCX"]
    assert health["batches"] == 3
    assert (health["rows"], health["accepted"], health["duplicates"], health["rejected"]) == (
        9,
        7,
        1,
        1,
    )
    assert health["rejection_rate"] == pytest.approx(1 / 9)
    assert health["rejections_by_reason"] == {"non_positive_price": 1}
    assert health["trades"] == 6
    assert health["last_batch_at"] is not None
    assert health["seq"] == {
        "first": 1,
        "last": 11,
        "messages": 7,
        "duplicates": 0,
        "gaps": 2,
        "missing": 4,
        "gap_ranges": [[4, 5], [8, 9]],
    }
    quiet = by_code["CBEEX"]
    assert (quiet["batches"], quiet["rows"], quiet["last_batch_at"]) == (0, 0, None)
    assert quiet["rejection_rate"] is None and quiet["seq"]["gaps"] == 0

    yesterday = today - dt.timedelta(days=1)
    earlier = api.get(
        "/v1/feeds/health", params={"date": yesterday.isoformat()}, headers={"X-API-Key": admin}
    ).json()
    assert {e["code"]: e["batches"] for e in earlier["exchanges"]} == {"BJCX": 0, "CBEEX": 0}


def test_health_needs_an_operator_or_exchange_key(api):
    exchange = exchange_key(api.engine, "BJCX")
    for key, status in (
        (None, 401),
        (role_key(api.engine, "read"), 403),
        (exchange, 200),
    ):
        headers = {"X-API-Key": key} if key else {}
        assert api.get("/v1/feeds/health", headers=headers).status_code == status
    exchange_key(api.engine, "CBEEX")
    own = api.get("/v1/feeds/health", headers={"X-API-Key": exchange}).json()
    assert [e["code"] for e in own["exchanges"]] == ["BJCX"]


def test_health_counts_trades_that_arrive_after_the_correction_window(api):
    bjcx = exchange_key(api.engine, "BJCX")
    admin = role_key(api.engine, "admin")
    recent = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    # March 2025 is months outside the five-publication-day window; an hour ago is inside.
    push(api, bjcx, [trade("OLD"), trade("NEW", traded_at=recent)])
    body = api.get("/v1/feeds/health", headers={"X-API-Key": admin}).json()
    health = {e["code"]: e for e in body["exchanges"]}["BJCX"]
    assert (health["trades"], health["after_correction_window"]) == (2, 1)

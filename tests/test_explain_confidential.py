"""Explain is transparent about the rules and confidential about the contributors' trades.

On 2 January 2025 two exchanges report rebar: BJCX three trades (one of 5 t, below the
20 t minimum lot), CBEEX one. Four trades from two exchanges are below the disclosure
minimum (5 trades, 3 exchanges). On 3 January three exchanges report six trades.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from publication.fixing import compute
from store.db import session_scope
from tests.feeds_support import client_for, exchange_key, push, role_key, trade

SMALL, LARGE = dt.date(2025, 1, 2), dt.date(2025, 1, 3)
BELOW_LOT = "BJ-SMALL-LOT"


def _at(day: dt.date, hhmm: str) -> str:
    return f"{day.isoformat()}T{hhmm}:00+08:00"


@pytest.fixture
def published(engine, database_url, tmp_path):
    with client_for(database_url, tmp_path / "archive") as client:
        keys = {code: exchange_key(engine, code) for code in ("BJCX", "CBEEX", "BSTX")}
        small = {
            "BJCX": [
                trade("BJ-1", traded_at=_at(SMALL, "10:00"), price="3300", quantity="200"),
                trade("BJ-2", traded_at=_at(SMALL, "11:00"), price="3310", quantity="200"),
                trade(BELOW_LOT, traded_at=_at(SMALL, "11:30"), price="3900", quantity="5"),
            ],
            "CBEEX": [trade("CB-1", traded_at=_at(SMALL, "10:30"), price="3305", quantity="200")],
        }
        large = {
            code: [
                trade(f"{code}-L{n}", traded_at=_at(LARGE, f"1{n}:00"), price=f"33{n}0")
                | {"quantity": "200"}
                for n in range(2)
            ]
            for code in keys
        }
        for batches in (small, large):
            for code, rows in batches.items():
                assert push(client, keys[code], rows).status_code == 200
    with session_scope(engine) as session:
        compute(session, SMALL, LARGE, now=dt.datetime(2025, 1, 3, 9, tzinfo=dt.UTC))
    keys["auditor"] = role_key(engine, "auditor")
    keys["read"] = role_key(engine, "read")
    return keys


def _explain(database_url, tmp_path, day, key=None) -> dict:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with client_for(database_url, tmp_path / "archive") as client:
        answer = client.get(
            "/v1/indices/REBAR/explain", params={"date": day.isoformat()}, headers=headers
        )
    assert answer.status_code == 200, answer.text
    (constituent,) = answer.json()["constituents"]
    return constituent["assessment"]


def test_the_public_sees_aggregates_and_no_trade(published, database_url, tmp_path):
    for key in (None, published["read"]):
        seen = _explain(database_url, tmp_path, SMALL, key)
        text = json.dumps(seen)
        for name in ("BJ-1", "BJ-2", BELOW_LOT, "CB-1", "BJCX", "CBEEX", "3900"):
            assert name not in text
        assert seen["trades_used"] == [] and seen["excluded"] == []
        rationale = seen["rationale"]
        assert rationale["counts_by_rule"] == {"used": 3, "min_lot": 1}
        assert rationale["statistics"]["exchanges"] == 2
        assert rationale["statistics"]["vwap"] == pytest.approx(3305.0)
        assert rationale["fallback"]["name"] == "none"
        assert rationale["disclosure"]["volumes_and_ranges"] is False
        # Below the minimum: no volumes by rule, no price range.
        assert "volume_by_rule" not in rationale
        assert not {"center", "band", "volume"} & set(rationale["statistics"])
        assert (seen["volume"], seen["high"], seen["low"]) == (None, None, None)


def test_above_the_minimum_volumes_and_range_are_shown(published, database_url, tmp_path):
    seen = _explain(database_url, tmp_path, LARGE)
    rationale = seen["rationale"]
    assert rationale["disclosure"]["volumes_and_ranges"] is True
    assert rationale["volume_by_rule"] == {"used": 1200.0}
    assert (seen["low"], seen["high"]) == (3300.0, 3310.0)
    assert "-L0" not in json.dumps(seen)  # still no trade


def test_an_exchange_sees_its_own_trades_only(published, database_url, tmp_path):
    own = _explain(database_url, tmp_path, SMALL, published["BJCX"])
    assert [t["trade_id"] for t in own["excluded"]] == [BELOW_LOT]
    assert own["excluded"][0]["rule"] == "min_lot"
    assert sorted(t["trade_id"] for t in own["trades_used"]) == ["BJ-1", "BJ-2"]
    other = _explain(database_url, tmp_path, SMALL, published["CBEEX"])
    assert BELOW_LOT not in json.dumps(other)
    assert [t["trade_id"] for t in other["trades_used"]] == ["CB-1"]
    assert other["excluded"] == []


def test_an_auditor_sees_every_trade(published, database_url, tmp_path):
    seen = _explain(database_url, tmp_path, SMALL, published["auditor"])
    assert sorted(t["trade_id"] for t in seen["trades_used"]) == ["BJ-1", "BJ-2", "CB-1"]
    assert [t["trade_id"] for t in seen["excluded"]] == [BELOW_LOT]
    assert seen["volume"] == 600.0

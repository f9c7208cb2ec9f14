"""``explain`` gives an auditor everything needed to recompute a published value, and nothing
else is used (what the public sees of the trades: tests/test_explain_confidential.py)."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.calendar import Calendar
from core.settings import Settings
from tests.feeds_support import role_key
from tests.test_publication_restatement import (  # noqa: F401  (the fixture)
    HOLIDAY,
    JAN5,
    LATE,
    LOOSE,
    NEW,
    OLD,
    SWEPT_AT,
    _late_trade,
    published,
)


def recompute(explanation: dict) -> float:
    """The value from the explanation alone: levels from the assessments' prices, then the chain."""
    total = 0.0
    for member in explanation["constituents"]:
        base = member["base"]["price"]
        level = member["assessment"]["price"] / base * explanation["base_value"]
        reference_level = member["reference"]["price"] / base * explanation["base_value"]
        assert level == pytest.approx(member["level"], rel=1e-12)
        assert reference_level == pytest.approx(member["reference_level"], rel=1e-12)
        total += member["weight"] * level / reference_level
    return explanation["reference_value"] * total


@pytest.fixture
def client(published):  # noqa: F811
    engine, _, catalogue_path, database_url = published
    settings = Settings(database_url=database_url, catalogue_path=catalogue_path)
    auditor = role_key(engine, "auditor")
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {auditor}"
        yield client


def test_composite_value_is_recomputed_from_its_explanation(client):
    for day in ["2025-12-31", "2026-01-05", "2026-01-06"]:
        _check_explanation(client, day)
    _check_trades(client)
    for day in ["2024-01-02", HOLIDAY.isoformat()]:  # 2 Jan 2026 is not a publication day
        answer = client.get("/v1/indices/TEST/explain", params={"date": day})
        assert answer.status_code == 404 and answer.json()["error"] == "NotPublished"


def _check_explanation(client, day):
    explanation = client.get("/v1/indices/TEST/explain", params={"date": day}).json()
    assert explanation["formula"] == "chain_linked_laspeyres"
    assert explanation["reference_date"] == ("2025-12-30" if day == "2025-12-31" else "2025-12-31")
    assert {m["code"]: m["weight"] for m in explanation["constituents"]} == {
        "REBAR": 0.6,
        "COTTON": 0.4,
    }
    assert recompute(explanation) == pytest.approx(explanation["value"], rel=1e-12)
    published_value = client.get(
        "/v1/indices/TEST/series", params={"start": day, "end": day}
    ).json()["points"][0]["value"]
    assert explanation["value"] == published_value
    assert explanation["methodology_version"] and len(explanation["inputs_hash"]) == 64


def _check_trades(client):
    explanation = client.get("/v1/indices/TEST/explain", params={"date": "2026-01-06"}).json()
    cotton = next(m for m in explanation["constituents"] if m["code"] == "COTTON")
    assessment = cotton["assessment"]
    assert assessment["date"] == "2026-01-06" and assessment["trades"] == 2
    used = assessment["trades_used"]
    assert sorted(t["trade_id"] for t in used) == ["C3a", "C3b"]
    vwap = math.fsum(t["price"] * t["quantity"] for t in used) / math.fsum(
        t["quantity"] for t in used
    )
    assert vwap == pytest.approx(assessment["price"], rel=1e-12)
    assert assessment["fallback"] == "none" and assessment["methodology_version"]
    assert len(assessment["inputs_hash"]) == 64


def test_explanation_as_of_shows_the_value_then_and_its_inputs_then(
    client,
    published,  # noqa: F811
    tmp_path,
):
    engine, catalogue, _, _ = published
    _late_trade(engine, catalogue, tmp_path, LATE, JAN5)  # stamped on the 2 Jan holiday
    from publication.restatement import sweep
    from store.db import session_scope

    with session_scope(engine) as session:
        sweep(session, SWEPT_AT, calendar=Calendar(LOOSE))
    before = client.get(
        "/v1/indices/TEST/explain",
        params={"date": JAN5, "as_of": (SWEPT_AT - dt.timedelta(seconds=1)).isoformat()},
    ).json()
    now = client.get("/v1/indices/TEST/explain", params={"date": JAN5}).json()
    assert before["value"] == pytest.approx(OLD, rel=1e-12) and before["vintage"] == 1
    assert now["value"] == pytest.approx(NEW, rel=1e-12) and now["status"] == "restated"
    assert recompute(before) == pytest.approx(OLD, rel=1e-12)
    assert recompute(now) == pytest.approx(NEW, rel=1e-12)
    cotton_now = next(m for m in now["constituents"] if m["code"] == "COTTON")["assessment"]
    assert "LATE1" in {t["trade_id"] for t in cotton_now["trades_used"]}
    assert cotton_now["trades"] == 3 and cotton_now["price"] == pytest.approx(13_800, rel=1e-12)

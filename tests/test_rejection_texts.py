"""A rejection names what would have been accepted: the band, the units, the currencies,
the codes, the ranges and grades, the listing date; read here from the published
methodology and catalogue files themselves."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.feeds_support import client_for, exchange_key, push, trade

ROOT = Path(__file__).resolve().parents[1]
METHODOLOGY = tomllib.loads((ROOT / "core/methodology/v2025.2.toml").read_text())["commodities"]
CATALOGUE = {
    c["code"]: c for c in tomllib.loads((ROOT / "core/catalogue.toml").read_text())["commodities"]
}


@pytest.fixture
def api(engine, database_url, tmp_path):
    with client_for(database_url, tmp_path / "archive") as client:
        client.key = exchange_key(engine, "BJCX")
        yield client


def _messages(api, rows) -> dict[str, tuple[str, str]]:
    answer = push(api, api.key, rows)
    assert answer.status_code == 200, answer.text
    return {r["trade_id"]: (r["code"], r["message"]) for r in answer.json()["rejections"]}


def _number(value: float) -> str:
    return f"{value:g}"


def test_each_rejection_names_the_allowed_values(api):
    got = _messages(
        api,
        [
            trade("BAND", price="99999"),
            trade("UNIT", unit="bushel"),
            trade("CCY", currency="JPY"),
            trade("CODE", commodity="GOLD"),
            trade("GRADE", grade="HRB999"),
            trade("COTTON-GRADE", commodity="COTTON", price="15000", grade="9999X"),
            trade("EARLY", traded_at="2019-06-01T10:00:00+08:00"),
            trade(
                "FE",
                commodity="IRONORE",
                price="100",
                currency="USD",
                unit="dmt",
                fe_pct="99",
            ),
        ],
    )
    rebar, cotton = METHODOLOGY["REBAR"], METHODOLOGY["COTTON"]
    low, high = rebar["price_band"]
    code, text = got["BAND"]
    assert code == "price_out_of_band"
    assert f"{_number(low)} to {_number(high)} CNY per t" in text

    code, text = got["UNIT"]
    assert code == "unit_mismatch"
    listed = text.split("allowed: ")[1].split(", ")
    assert sorted(listed) == sorted([CATALOGUE["REBAR"]["unit"], *rebar["normalisation"]["units"]])

    code, text = got["CCY"]
    assert code == "currency_mismatch"
    assert text.split("allowed: ")[1].split(", ") == [CATALOGUE["REBAR"]["currency"]]

    code, text = got["CODE"]
    assert code == "unknown_commodity"
    assert sorted(text.split("allowed: ")[1].split(", ")) == sorted(CATALOGUE)

    for trade_id, spec in (("GRADE", rebar), ("COTTON-GRADE", cotton)):
        code, text = got[trade_id]
        assert code == "quality_out_of_range"
        grades = spec["normalisation"]["differentials"]["grade"]
        assert sorted(text.split("allowed: ")[1].split(", ")) == sorted(grades)

    code, text = got["EARLY"]
    assert code == "before_listing"
    assert CATALOGUE["REBAR"]["listed_on"].isoformat() in text

    code, text = got["FE"]
    assert code == "quality_out_of_range"
    fe_low, fe_high = CATALOGUE["IRONORE"]["spec"]["fe_pct_range"]
    assert f"allowed: {_number(fe_low)} to {_number(fe_high)}" in text

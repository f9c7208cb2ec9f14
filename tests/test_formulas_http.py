"""Researcher formulas over HTTP: multilateral indices and their splices, a window longer
than the range, and days on which a commodity traded nothing."""

from __future__ import annotations

import datetime as dt
import functools
import io
import math

import polars as pl
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.routes import formulas as formulas_route
from core.settings import Settings
from tests import naive
from tests.publication_data import T0, level, publish_assessments, weekdays

DAYS = weekdays(dt.date(2025, 1, 2), 12)
CODES = ("COTTON", "REBAR", "HRC")
STALE = (DAYS[4], "COTTON")
"""The one commodity-day without traded volume (a stale assessment)."""


def _price(code: str, n: int, day: dt.date) -> float:
    shift = CODES.index(code)
    return level(day + dt.timedelta(days=11 * shift)) * (1 + shift) + 3.0 * ((n * (shift + 2)) % 5)


def _volume(code: str, n: int, day: dt.date) -> float:
    if (day, code) == STALE:
        return 0.0
    return 20.0 + (7 * n + 5 * CODES.index(code)) % 13


PRICES = {day: {code: _price(code, n, day) for code in CODES} for n, day in enumerate(DAYS)}
VOLUMES = {day: {code: _volume(code, n, day) for code in CODES} for n, day in enumerate(DAYS)}


@pytest.fixture
def client(engine, database_url):
    for code in CODES:
        points = [
            {
                "date": day,
                "price": PRICES[day][code],
                "trades": 0 if (day, code) == STALE else 4,
                "volume": VOLUMES[day][code],
                "high": PRICES[day][code],
                "low": PRICES[day][code],
                "fallback": "stale" if (day, code) == STALE else "none",
            }
            for day in DAYS
        ]
        publish_assessments(engine, code, points, now=T0)
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client


def _get(client, formula: str, **params):
    return client.get(f"/v1/formulas/{formula}", params={"commodities": ",".join(CODES), **params})


def _values(answer) -> dict[dt.date, float | None]:
    assert answer.status_code == 200, answer.text
    return {dt.date.fromisoformat(p["period"]): p["value"] for p in answer.json()["points"]}


def _traded() -> tuple[dict, dict]:
    """The seeded prices and volumes without the commodity-day that traded nothing."""
    prices = {day: dict(items) for day, items in PRICES.items()}
    volumes = {day: dict(items) for day, items in VOLUMES.items()}
    day, code = STALE
    del prices[day][code], volumes[day][code]
    return prices, volumes


@pytest.mark.parametrize("formula", ["geks", "gk", "wtpd"])
def test_window_longer_than_the_range_is_refused_naming_both_lengths(client, formula) -> None:
    answer = _get(client, formula, start=DAYS[0], end=DAYS[4], window=8)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "InvalidInput"
    [problem] = body["detail"]
    assert problem["field"] == "window"
    assert "8 periods is longer than the 5 periods" in problem["message"]
    assert "give 2 to 5" in problem["message"]


def test_a_day_without_traded_volume_is_left_out_and_listed(client) -> None:
    answer = _get(client, "jevons")
    values = _values(answer)
    body = answer.json()
    day, code = STALE
    assert body["left_out"] == [
        {"period": day.isoformat(), "commodity": code, "reason": "no traded volume"}
    ]
    assert answer.headers["x-left-out"] == "1"
    # Jevons against the first day over the commodities priced on both: on the stale day
    # REBAR and HRC only, on the next day all three.
    first, after = DAYS[0], DAYS[5]

    def relative(code: str, day: dt.date) -> float:
        return PRICES[day][code] / PRICES[first][code]

    assert values[day] == pytest.approx(
        math.sqrt(relative("REBAR", day) * relative("HRC", day)), rel=1e-12
    )
    assert values[after] == pytest.approx(
        (relative("COTTON", after) * relative("REBAR", after) * relative("HRC", after)) ** (1 / 3),
        rel=1e-12,
    )
    csv = _get(client, "jevons", format="csv")
    assert csv.headers["x-left-out"] == "1"
    assert pl.read_csv(io.BytesIO(csv.content)).height == len(DAYS)


def test_weighted_and_multilateral_formulas_leave_the_day_out_too(client) -> None:
    prices, volumes = _traded()
    laspeyres = _values(_get(client, "laspeyres"))
    expected = naive.fixed_base_index("laspeyres", prices, volumes, DAYS[0])
    assert laspeyres == pytest.approx(expected, rel=1e-12)
    gk = _get(client, "gk", window=5, splice="wisp")
    levels = functools.cache(functools.partial(naive.geary_khamis_window, prices, volumes))
    assert _values(gk) == pytest.approx(naive.extended_index(levels, DAYS, 5, "wisp"), rel=1e-12)
    assert gk.json()["left_out"][0]["commodity"] == STALE[1]


def test_a_range_with_no_traded_volume_at_all_is_refused(client) -> None:
    answer = client.get(
        "/v1/formulas/fisher", params={"commodities": "COTTON", "start": STALE[0], "end": STALE[0]}
    )
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "InvalidRange"
    assert "traded volume" in body["detail"]


@pytest.mark.parametrize(
    ("formula", "window_levels"),
    [
        ("gk", naive.geary_khamis_window),
        ("wtpd", naive.wtpd_window),
        ("geks", functools.partial(naive.geks_window, "fisher")),
    ],
)
@pytest.mark.parametrize("splice", ["mean", "mean_published", "fbew", "fbmw"])
def test_multilateral_indices_match_the_slow_reference(
    client, formula, window_levels, splice
) -> None:
    prices, volumes = _traded()
    answer = _get(client, formula, window=4, splice=splice, geks_base="fisher")
    body = answer.json()
    assert (body["formula"], body["method"], body["window"], body["splice"]) == (
        formula,
        formula,
        4,
        splice,
    )
    levels = functools.cache(functools.partial(window_levels, prices, volumes))
    expected = naive.extended_index(levels, DAYS, 4, splice)
    assert _values(answer) == pytest.approx(expected, rel=1e-12)


def test_bilateral_answers_have_no_window_or_splice(client) -> None:
    body = _get(client, "fisher", window=4, splice="wisp").json()
    assert (body["method"], body["window"], body["splice"]) == ("fixed", None, None)


def test_unknown_splice_is_refused_with_the_valid_ones(client) -> None:
    answer = _get(client, "gk", splice="mean_pub")
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["field"] == "splice"
    for name in ("wisp", "hasp", "mean_published", "fbew", "fbmw"):
        assert name in problem["message"]


def test_too_large_a_multilateral_computation_is_refused(client, monkeypatch) -> None:
    monkeypatch.setattr(formulas_route, "MAX_WORK", 100)
    answer = _get(client, "wtpd", window=6)
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["field"] == "window"
    assert "3 commodities and 12 periods with a window of 6" in problem["message"]
    assert "shorten the window or the range" in problem["message"]

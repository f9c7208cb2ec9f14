"""Traded value for the weights: under 2026.1 from the trades that qualified for their
window's assessment, over a data year cut at the cut-off; under 2025.2 from every active
trade, midnight to midnight.

The weights effective on 1 January 2026 are announced on Monday 3 November 2025. Under
2025.2 their data year is 1 November 2024 00:00 to 1 November 2025 00:00 (Beijing). Under
2026.1 it holds the assessment windows of the publication days from 1 November 2024 to 31
October 2025: from Thursday 31 October 2024 15:00 (exclusive) to Friday 31 October 2025
15:00 (inclusive); the next one, for 2027, runs on to Friday 30 October 2026 15:00.
Each window is judged under the version in force on its publication day.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core.calendar import Calendar
from publication.rebalance import announce
from store import models
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from tests.rebalance_support import at, members, world
from tests.test_methodology_fallbacks import add_trades

PRODUCTION = {"ALPHA": 40.0, "BRAVO": 30.0, "CHARLIE": 30.0}
EFFECTIVE = dt.date(2026, 1, 1)
ANNOUNCED = at(dt.date(2025, 11, 3), 8)
OCTOBER = dt.date(2025, 10, 15)
REL = 1e-12


@pytest.fixture
def stores(database_url):
    engines = []

    def make(version: str, **options):
        catalogue, methodology = world(version, PRODUCTION, **options)
        engine = make_engine(database_url)
        prepare_database(engine, catalogue, methodology)
        engines.append(engine)
        return engine, catalogue, Calendar(methodology)

    yield make
    for engine in engines:
        engine.dispose()


def _outlier_window() -> list[tuple]:
    """ALPHA at 99, 100, 100, 101 and 300 (10 t each): the median is 100, the MAD 1, so
    2026.1's spread is 1.4826 (above its floor, 1% of 100) and its band 100 ± 4 × 1.4826:
    300 is excluded. BRAVO and CHARLIE trade at one price each: nothing excluded."""
    rows = [
        (exchange, f"A{n}", "ALPHA", at(OCTOBER, 10 + n), price, 10.0)
        for n, (exchange, price) in enumerate(
            [("X", 99.0), ("Y", 100.0), ("X", 100.0), ("Y", 101.0), ("X", 300.0)]
        )
    ]
    rows += [(e, f"B{n}", "BRAVO", at(OCTOBER, 10 + n), 50.0, 20.0) for n, e in enumerate("XYX")]
    rows += [(e, f"C{n}", "CHARLIE", at(OCTOBER, 10 + n), 20.0, 5.0) for n, e in enumerate("XYX")]
    return rows


@pytest.mark.parametrize(
    ("version", "rule", "alpha"),
    [
        ("2025.2", "all_trades", 10 * (99 + 100 + 100 + 101 + 300)),  # 7000: every trade
        ("2026.1", "qualifying", 10 * (99 + 100 + 100 + 101)),  # 4000: not the outlier
    ],
)
def test_excluded_trades_count_toward_traded_value_under_2025_2_only(stores, version, rule, alpha):
    engine, catalogue, calendar = stores(version)
    add_trades(engine, _outlier_window())
    with session_scope(engine) as session:
        report = announce(session, 2026, ANNOUNCED, calendar=calendar, catalogue=catalogue)
    stored = members(engine, EFFECTIVE)
    traded = {code: member.traded_value for code, member in stored.items()}
    assert traded == {"ALPHA": alpha, "BRAVO": 3 * 50 * 20, "CHARLIE": 3 * 20 * 5}
    total = alpha + 3000 + 300
    # Bounds never bind: weight = 2/3 × traded share + 1/3 × production share.
    assert report.weights["ALPHA"] == pytest.approx(2 / 3 * alpha / total + 1 / 3 * 0.4, rel=REL)
    assert report.weights["CHARLIE"] == pytest.approx(2 / 3 * 300 / total + 1 / 3 * 0.3, rel=REL)
    with session_scope(engine) as session:
        parameters = session.scalar(select(models.WeightSet.parameters))
    assert parameters["traded_value"] == rule


def test_the_data_year_runs_from_cut_off_to_cut_off_under_2026_1(stores):
    engine, catalogue, calendar = stores("2026.1")
    assert calendar.methodology.rebalance.data_year_cut == "cutoff"
    assert calendar.data_year(2026) == (
        at(dt.date(2024, 10, 31), 15),
        at(dt.date(2025, 10, 31), 15),
    )
    assert calendar.data_year(2027) == (
        at(dt.date(2025, 10, 31), 15),
        at(dt.date(2026, 10, 30), 15),
    )
    last = dt.date(2025, 10, 31)  # the last day of the 2026 weights' data year
    add_trades(
        engine,
        [
            ("X", "before", "ALPHA", at(dt.date(2024, 10, 31), 15, 30), 100.0, 1.0),
            ("X", "inside", "ALPHA", at(last, 14, 30), 100.0, 2.0),
            ("X", "after", "ALPHA", at(last, 15, 30), 100.0, 4.0),
            ("X", "june", "BRAVO", at(dt.date(2025, 6, 16), 10), 100.0, 10.0),
        ],
    )
    with session_scope(engine) as session:
        announce(session, 2026, ANNOUNCED, calendar=calendar, catalogue=catalogue)
    # 31 Oct 2024 15:30 is in 1 Nov 2024's window: this year's; 31 Oct 2025 15:30 is not.
    assert members(engine, EFFECTIVE)["ALPHA"].traded_value == 100 + 200
    with session_scope(engine) as session:
        weight_set = session.scalar(select(models.WeightSet))
        assert (weight_set.data_from, weight_set.data_to) == (dt.date(2024, 11, 1), last)
        assert weight_set.parameters["data_year"] == [
            at(dt.date(2024, 10, 31), 15).isoformat(),
            at(last, 15).isoformat(),
        ]
    # The trade at 15:30 on 31 October 2025 belongs to the next data year.
    with session_scope(engine) as session:
        announce(session, 2027, at(dt.date(2026, 11, 2), 8), calendar=calendar, catalogue=catalogue)
    assert members(engine, dt.date(2027, 1, 1))["ALPHA"].traded_value == 400
    with session_scope(engine) as session:
        later = session.scalar(
            select(models.WeightSet).where(models.WeightSet.effective_from == dt.date(2027, 1, 1))
        )
        assert (later.data_from, later.data_to) == (dt.date(2025, 11, 3), dt.date(2026, 10, 30))


def test_the_data_year_runs_from_midnight_to_midnight_under_2025_2(stores):
    engine, catalogue, calendar = stores("2025.2")
    assert calendar.data_year(2026) == (at(dt.date(2024, 11, 1), 0), at(dt.date(2025, 11, 1), 0))
    last = dt.date(2025, 10, 31)
    add_trades(
        engine,
        [
            ("X", "before", "ALPHA", at(dt.date(2024, 10, 31), 15, 30), 100.0, 1.0),
            ("X", "inside", "ALPHA", at(last, 14, 30), 100.0, 2.0),
            ("X", "after", "ALPHA", at(last, 15, 30), 100.0, 4.0),
            ("X", "june", "BRAVO", at(dt.date(2025, 6, 16), 10), 100.0, 10.0),
        ],
    )
    with session_scope(engine) as session:
        announce(session, 2026, ANNOUNCED, calendar=calendar, catalogue=catalogue)
    assert members(engine, EFFECTIVE)["ALPHA"].traded_value == 200 + 400


@pytest.mark.parametrize(
    ("effective_from", "alpha"),
    [
        # 2025.2 judges the October window: mean 102.5, SD √(77/4) ≈ 4.387, band ± 8.77 keeps
        # 110 (7.5 from the mean).
        (dt.date(2025, 12, 1), 10 * (99 + 100 + 101 + 110)),
        # 2026.1 judges it: median 100.5, MAD 1, spread 1.4826, band ± 5.93 excludes 110.
        (dt.date(2025, 1, 2), 10 * (99 + 100 + 101)),
    ],
)
def test_each_window_is_judged_under_the_version_in_force_on_its_day(stores, effective_from, alpha):
    engine, catalogue, calendar = stores("2026.1", effective_from=effective_from)
    rows = [
        (exchange, f"A{n}", "ALPHA", at(OCTOBER, 10 + n), price, 10.0)
        for n, (exchange, price) in enumerate(
            [("X", 99.0), ("Y", 100.0), ("X", 101.0), ("Y", 110.0)]
        )
    ]
    add_trades(engine, [*rows, ("X", "B", "BRAVO", at(OCTOBER, 10), 50.0, 20.0)])
    with session_scope(engine) as session:
        announce(session, 2026, ANNOUNCED, calendar=calendar, catalogue=catalogue)
    assert members(engine, EFFECTIVE)["ALPHA"].traded_value == alpha


@pytest.mark.parametrize(
    ("traded_value", "cut", "alpha"),
    [
        ("qualifying", "midnight", 200 + 400),
        ("all_trades", "cutoff", 100 + 200),
        ("all_trades", "midnight", 200 + 400),
    ],
)
def test_either_cut_with_either_set_of_trades(stores, traded_value, cut, alpha):
    engine, catalogue, calendar = stores("2026.1", traded_value=traded_value, data_year_cut=cut)
    last = dt.date(2025, 10, 31)
    add_trades(
        engine,
        [
            ("X", "before", "ALPHA", at(dt.date(2024, 10, 31), 15, 30), 100.0, 1.0),
            ("X", "inside", "ALPHA", at(last, 14, 30), 100.0, 2.0),
            ("X", "after", "ALPHA", at(last, 15, 30), 100.0, 4.0),
        ],
    )
    with session_scope(engine) as session:
        announce(session, 2026, ANNOUNCED, calendar=calendar, catalogue=catalogue)
    assert members(engine, EFFECTIVE)["ALPHA"].traded_value == alpha

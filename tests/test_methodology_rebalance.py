"""The annual rebalance end to end: announce weights computed from a year of trades and the
methodology's production values, apply them, and see no level jump on the rebalance date.

The test methodology is the one in force (mainland calendar) with hand-computable bounds:
the weights effective on 1 January 2026 are announced on the first publication day on or
after 1 November 2025 (a Saturday: Monday 3 November) and applied on the first publication
day of 2026 (1 and 2 January are public holidays: Monday 5 January). The October data day
is 15 October 2025, clear of the National Day holidays (1 to 8 October)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from core.calendar import Calendar
from core.errors import RebalanceError
from core.methodology import RebalanceRules, in_force
from publication.fixing import compute
from publication.rebalance import announce, apply
from store import models
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from store.models import NormalisingConstant, WeightSet, WeightSetMember
from tests.methodology_support import split_world
from tests.test_methodology_fallbacks import add_trades, at
from tests.test_methodology_indices import HAND_BOUNDS, HAND_WEIGHTS

CODES = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT"]
SECTORS = ["X", "X", "Y", "Y", "Z", "Z"]
BASE_WEIGHTS = [0.2, 0.1, 0.2, 0.2, 0.2, 0.1]
# Production values (CNY bn) give production shares 0.20 0.20 0.20 0.17 0.21 0.02; the
# October trades give traded-value shares 0.425 0.125 0.20 0.14 0.105 0.005: the targets
# (2/3 · traded + 1/3 · production) are then the hand-computed case's 0.35 0.15 0.20 0.15
# 0.14 0.01, whose capped weights test_methodology_indices.py works out by hand.
PRODUCTION = [20.0, 20.0, 20.0, 17.0, 21.0, 2.0]
LOTS = [425.0, 125.0, 200.0, 140.0, 105.0, 5.0]


def _catalogue() -> str:
    text = """
[index_family]
base_date = 2025-10-15
base_value = 1000.0

[composite]
code = "T"
name_en = "Test composite"
name_zh = "测试综合指数"
"""
    for sector in ("X", "Y", "Z"):
        text += f"""
[[sectors]]
code = "{sector}"
index_code = "T-{sector}"
name_en = "Sector {sector}"
name_zh = "板块{sector}"
"""
    for code, sector, weight, production in zip(
        CODES, SECTORS, BASE_WEIGHTS, PRODUCTION, strict=True
    ):
        text += f"""
[[commodities]]
code = "{code}"
name_en = "{code.title()}"
name_zh = "商品{code}"
sector = "{sector}"
unit = "t"
currency = "CNY"
weight = {weight}
production_value = {production}
listed_on = 2020-01-01
price_band = [10.0, 1000.0]
spec = {{ description = "{code.lower()}" }}
"""
    return text


CATALOGUE, METHODOLOGY = split_world(
    _catalogue(),
    in_force().model_copy(
        update={"version": "test-rebalance", "rebalance": RebalanceRules(**HAND_BOUNDS)}
    ),
)
CALENDAR = Calendar(METHODOLOGY)
OCTOBER = dt.date(2025, 10, 15)
LINK, REBALANCE, AFTER = dt.date(2025, 12, 31), dt.date(2026, 1, 5), dt.date(2026, 1, 6)
PRICES = {  # VWAP of each commodity on each publication day
    OCTOBER: [100.0] * 6,
    LINK: [120.0, 90.0, 100.0, 100.0, 100.0, 100.0],
    REBALANCE: [120.0, 90.0, 100.0, 100.0, 100.0, 100.0],
    AFTER: [132.0, 90.0, 100.0, 100.0, 100.0, 100.0],
}


def _trades():
    rows = []
    for day, prices in PRICES.items():
        for code, price, lot in zip(CODES, prices, LOTS, strict=True):
            quantity = lot if day == OCTOBER else 10.0
            for n, (exchange, offset) in enumerate([("X", 0.0), ("Y", 1.0), ("X", -1.0)]):
                rows.append(
                    (exchange, f"{code}-{day}-{n}", code, at(day, 10 + n), price + offset, quantity)
                )
    return rows


def _values(session, code: str) -> dict[dt.date, models.IndexValue]:
    return {
        v.date: v
        for v in session.scalars(
            select(models.IndexValue)
            .join(models.IndexDefinition, models.IndexDefinition.id == models.IndexValue.index_id)
            .where(models.IndexDefinition.code == code, models.IndexValue.superseded_at.is_(None))
        )
    }


@pytest.fixture
def store(database_url):
    engine = make_engine(database_url)
    prepare_database(engine, CATALOGUE, METHODOLOGY)
    add_trades(engine, _trades())
    yield engine
    engine.dispose()


def test_rebalance_weights_after_caps_and_no_level_jump(store):
    rules = METHODOLOGY.rebalance
    effective = rules.effective_date(2026)
    assert (rules.announcement_date(2026), effective) == (dt.date(2025, 11, 1), dt.date(2026, 1, 1))
    announced_on, applied_on = CALENDAR.rebalance_days(2026)
    assert (announced_on, applied_on) == (dt.date(2025, 11, 3), REBALANCE)
    with session_scope(store) as session:
        compute(session, OCTOBER, LINK, now=at(LINK, 16), calendar=CALENDAR)
        report = announce(
            session, 2026, at(announced_on, 8), calendar=CALENDAR, catalogue=CATALOGUE
        )
    assert report.status == "announced"
    assert [report.weights[c] for c in CODES] == pytest.approx(HAND_WEIGHTS, rel=1e-12)
    with session_scope(store) as session:
        weight_set = session.scalar(select(WeightSet))
        assert (weight_set.status, weight_set.data_from) == ("announced", dt.date(2024, 11, 1))
        members = {m.commodity_id: m for m in session.scalars(select(WeightSetMember))}
        assert sorted(round(m.traded_share, 12) for m in members.values()) == sorted(
            [0.425, 0.125, 0.2, 0.14, 0.105, 0.005]
        )
        # Before it is applied the announced set changes nothing.
        assert (
            session.scalar(
                select(models.IndexConstituent).where(
                    models.IndexConstituent.effective_from == effective
                )
            )
            is None
        )

    with session_scope(store) as session:
        applied = apply(session, applied_on, at(applied_on, 8), calendar=CALENDAR)
        compute(session, REBALANCE, AFTER, now=at(AFTER, 16), calendar=CALENDAR)
    assert applied.status == "effective"
    # By hand: on 31 Dec the old weights give 1000 × (0.2 × 1.2 + 0.1 × 0.9 + 0.7) = 1030.
    assert applied.constants["T"] == pytest.approx(1030.0, rel=1e-12)

    with session_scope(store) as session:
        values = _values(session, "T")
        link, rebalance, after = values[LINK], values[REBALANCE], values[AFTER]
        assert link.value == pytest.approx(1030.0, rel=1e-12)
        # No jump: the constituents did not move, so neither does the index, although the
        # new weights against the base would read 1000 × (0.3 × 1.2 + 0.15 × 0.9 + 0.55)
        # = 1045.
        assert rebalance.value == pytest.approx(link.value, rel=1e-12)
        assert 1000 * sum(
            w * p / 100 for w, p in zip(HAND_WEIGHTS, PRICES[REBALANCE], strict=True)
        ) == pytest.approx(1045.0, rel=1e-12)
        # 6 Jan: 1030 × (0.30 × 132/120 + 0.70) = 1030 × 1.03 = 1060.9.
        assert after.value == pytest.approx(1060.9, rel=1e-12)
        why = after.rationale
        assert (why["reference_date"], why["weights_effective_from"]) == (
            LINK.isoformat(),
            "2026-01-01",
        )
        assert why["normalising_constant"] == why["reference_value"] == pytest.approx(1030.0)
        assert {c["code"]: c["weight"] for c in why["constituents"]} == pytest.approx(
            dict(zip(CODES, HAND_WEIGHTS, strict=True)), rel=1e-12
        )
        recomputed = why["reference_value"] * sum(
            c["weight"] * c["level"] / c["reference_level"] for c in why["constituents"]
        )
        assert recomputed == pytest.approx(after.value, rel=1e-12)
        # A sector reweights its members to sum to 1: X holds 0.30 and 0.15 of 0.45.
        sector = _values(session, "T-X")[AFTER].rationale
        assert [c["weight"] for c in sector["constituents"]] == pytest.approx([2 / 3, 1 / 3])
        constant = session.scalar(
            select(NormalisingConstant)
            .join(
                models.IndexDefinition,
                models.IndexDefinition.id == NormalisingConstant.index_id,
            )
            .where(
                models.IndexDefinition.code == "T",
                NormalisingConstant.effective_from == effective,
            )
        )
        assert (constant.reference_date, constant.value) == (LINK, pytest.approx(1030.0))
        assert session.scalar(select(WeightSet.status)) == "effective"

    with session_scope(store) as session, pytest.raises(RebalanceError):
        announce(session, 2026, at(REBALANCE, 9), calendar=CALENDAR, catalogue=CATALOGUE)


def test_late_application_restates_values_published_with_the_old_weights(store):
    with session_scope(store) as session:
        announce(session, 2026, at(dt.date(2025, 11, 3), 8), calendar=CALENDAR, catalogue=CATALOGUE)
        compute(session, OCTOBER, AFTER, now=at(AFTER, 16), calendar=CALENDAR)
    with session_scope(store) as session:
        old = _values(session, "T")[AFTER].value
        # Old weights: 1030 (31 Dec link) × (0.2 × 1.1 + 0.8) = 1050.6.
        assert old == pytest.approx(1050.6, rel=1e-12)
        report = apply(session, AFTER, at(AFTER, 17), calendar=CALENDAR)
    assert report.restated_from == REBALANCE
    with session_scope(store) as session:
        new = _values(session, "T")[AFTER]
        assert (new.status, new.value) == ("restated", pytest.approx(1060.9, rel=1e-12))

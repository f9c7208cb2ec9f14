"""Chain-linked Laspeyres composite against hand computations.

The days are the base 30 December 2025, the year-end link 31 December and the first two
publication days of 2026, 5 and 6 January (1 and 2 January are mainland public holidays,
not publication days under the methodology in force)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sqlalchemy import select

from core.calendar import Calendar
from core.errors import InvalidInput
from core.methodology import AssessmentRules, in_force
from index.chain import chain_link
from ingest.files import ingest_file
from publication.fixing import compute
from store import models
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from store.reference import ensure_exchange
from tests.methodology_support import WORLD_DAY, identity_text, split_world

DAYS = np.array(["2025-12-30", "2025-12-31", "2026-01-05", "2026-01-06"], dtype="datetime64[D]")
# Constituent levels (base 1000) and weights 0.6 / 0.4.
A = [1000.0, 1100.0, 1210.0, 1100.0]
B = [1000.0, 900.0, 900.0, 1080.0]
# By hand: 30 Dec is the base (1000). 31 Dec, the last day of 2025, is the link:
#   1000 × (0.6 × 1.1 + 0.4 × 0.9) = 1020.
# 5 Jan: 1020 × (0.6 × 1210/1100 + 0.4 × 900/900) = 1020 × 1.06 = 1081.2
# 6 Jan: 1020 × (0.6 × 1100/1100 + 0.4 × 1080/900) = 1020 × 1.08 = 1101.6
# (a fixed-base Laspeyres would give 1000 × (0.6 × 1.1 + 0.4 × 1.08) = 1092 on 6 Jan).
EXPECTED = [1000.0, 1020.0, 1081.2, 1101.6]


def test_chain_link_equals_hand_computation():
    chained = chain_link(DAYS, np.column_stack([A, B]), np.array([0.6, 0.4]), DAYS[0], 1000.0)
    np.testing.assert_allclose(chained.values, EXPECTED, rtol=1e-12)
    # 30 and 31 Dec chain from the base (row 0); January from the 31 Dec link (row 1).
    assert chained.reference_rows.tolist() == [0, 0, 1, 1]


def test_gap_carries_the_constituents_last_level_and_dates_before_base_are_nan():
    days = np.array(["2025-12-29", *DAYS.astype(str)], dtype="datetime64[D]")
    levels = np.column_stack([[990.0, *A], [1010.0, 1000.0, 900.0, np.nan, 1080.0]])
    chained = chain_link(days, levels, np.array([0.6, 0.4]), days[1], 1000.0)
    assert np.isnan(chained.values[0])
    np.testing.assert_allclose(chained.values[1:], EXPECTED, rtol=1e-12)
    assert chained.levels[3, 1] == 900.0  # 5 Jan carries cotton's 31 Dec level


@pytest.mark.parametrize(
    ("field", "weights", "base"),
    [("weights", [0.5, 0.4], "2025-12-30"), ("base_day", [0.6, 0.4], "2025-12-01")],
)
def test_chain_link_refuses_bad_inputs(field, weights, base):
    with pytest.raises(InvalidInput) as info:
        chain_link(DAYS, np.column_stack([A, B]), np.array(weights), np.datetime64(base), 1000.0)
    assert info.value.field == field


# The hand computations below test the index arithmetic, not the sufficiency rules: every
# window with at least one trade is sufficient, nothing is excluded by lot size.
RELAXED = in_force(WORLD_DAY).model_copy(
    update={
        "version": "test-loose",
        "assessment": AssessmentRules(min_trades=1, min_exchanges=1, max_exchange_share=1.0),
    }
)

SMALL_WORLD = """
[index_family]
base_date = 2025-12-30
base_value = 1000.0

[composite]
code = "TEST"
name_en = "Test composite"
name_zh = "测试综合指数"

[[sectors]]
code = "ferrous"
index_code = "TEST-FER"
name_en = "Ferrous"
name_zh = "黑色"

[[sectors]]
code = "agriculture"
index_code = "TEST-AGR"
name_en = "Agriculture"
name_zh = "农产品"

[[commodities]]
code = "REBAR"
name_en = "Rebar"
name_zh = "螺纹钢"
sector = "ferrous"
unit = "t"
currency = "CNY"
weight = 0.6
listed_on = 2020-01-01
price_band = [1000.0, 10000.0]
spec = { description = "rebar" }

[[commodities]]
code = "COTTON"
name_en = "Cotton"
name_zh = "棉花"
sector = "agriculture"
unit = "t"
currency = "CNY"
weight = 0.4
listed_on = 2020-01-01
price_band = [1000.0, 30000.0]
spec = { description = "cotton" }
"""

SMALL_CATALOGUE = identity_text(SMALL_WORLD)
SMALL, LOOSE = split_world(SMALL_WORLD, RELAXED)

# Rebar: one trade a day at 30 × A/10. Cotton: two trades a day whose VWAP is 15 × B:
#   (p1 × 1 + p2 × 2) / 3 with p1 = VWAP − 6 and p2 = VWAP + 3.
FEED = ["trade_id,commodity,traded_at,price,quantity,currency,unit"]
for n, (day, a, b) in enumerate(zip(DAYS.astype(str), A, B, strict=True)):
    vwap = 15 * b
    FEED += [
        f"R{n},REBAR,{day}T10:00:00+08:00,{3 * a},50,CNY,t",
        f"C{n}a,COTTON,{day}T10:05:00+08:00,{vwap - 6},1,CNY,t",
        f"C{n}b,COTTON,{day}T14:59:59+08:00,{vwap + 3},2,CNY,t",
    ]


def test_service_publishes_commodity_sector_and_composite_as_computed_by_hand(
    database_url, tmp_path
):
    catalogue, methodology = SMALL, LOOSE
    calendar = Calendar(methodology)
    engine = make_engine(database_url)
    prepare_database(engine, catalogue, methodology)
    feed = tmp_path / "feed.csv"
    feed.write_text("\n".join(FEED) + "\n")
    with session_scope(engine) as session:
        ensure_exchange(session, "X")
    with session_scope(engine) as session:
        assert ingest_file(session, catalogue, feed, "X", calendar=calendar).accepted == 12
    with session_scope(engine) as session:
        report = compute(session, dt.date(2025, 12, 30), dt.date(2026, 1, 6), calendar=calendar)
    assert report.skipped == {}
    assert report.closed_days == [] and report.withdrawn_days == []

    with session_scope(engine) as session:
        values, rationales = {}, {}
        for code, row in session.execute(
            select(models.IndexDefinition.code, models.IndexValue)
            .join(models.IndexValue, models.IndexValue.index_id == models.IndexDefinition.id)
            .where(models.IndexValue.superseded_at.is_(None))
        ):
            values.setdefault(code, {})[row.date.isoformat()] = row.value
            rationales[code, row.date.isoformat()] = row.rationale
    engine.dispose()

    # The rationale alone reproduces the value: reference value × Σ w · level / reference level.
    why = rationales["TEST", "2026-01-06"]
    assert why["reference_date"] == "2025-12-31"
    assert {c["code"]: c["weight"] for c in why["constituents"]} == {"REBAR": 0.6, "COTTON": 0.4}
    recomputed = why["reference_value"] * sum(
        c["weight"] * c["level"] / c["reference_level"] for c in why["constituents"]
    )
    assert recomputed == pytest.approx(1101.6, rel=1e-12)

    days = list(DAYS.astype(str))
    assert values["TEST"] == pytest.approx(dict(zip(days, EXPECTED, strict=True)), rel=1e-12)
    assert values["REBAR"] == pytest.approx(dict(zip(days, A, strict=True)), rel=1e-12)
    assert values["COTTON"] == pytest.approx(dict(zip(days, B, strict=True)), rel=1e-12)
    assert values["TEST-FER"] == pytest.approx(values["REBAR"], rel=1e-12)
    assert values["TEST-AGR"] == pytest.approx(values["COTTON"], rel=1e-12)

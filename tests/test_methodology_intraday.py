"""Intraday provisional values, their promotion by the fixing, and the daily OHLC."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from publication.fixing import compute
from publication.intraday import publish_provisional
from publication.ohlc import daily_ohlc
from store import models
from store.db import session_scope
from store.models import IntradayIndexValue
from tests.test_methodology_fallbacks import add_trades, at, store, sufficient, weekday

__all__ = ["store"]  # the fixture

D0, D1 = weekday(0), weekday(1)


def _batch(day: dt.date, hour: int, prices: dict[str, float]) -> list[tuple]:
    rows = []
    for code, price in prices.items():
        for n, (exchange, offset) in enumerate([("X", 0.0), ("Y", 1.0), ("X", -1.0)]):
            rows.append(
                (
                    exchange,
                    f"{code}-{day}-{hour}-{n}",
                    code,
                    at(day, hour, 10 * (n + 1)),
                    price + offset,
                    200.0,
                )
            )
    return rows


def _current(session, code: str, day: dt.date) -> models.IndexValue:
    return session.scalar(
        select(models.IndexValue)
        .join(models.IndexDefinition, models.IndexDefinition.id == models.IndexValue.index_id)
        .where(
            models.IndexDefinition.code == code,
            models.IndexValue.date == day,
            models.IndexValue.superseded_at.is_(None),
        )
    )


def test_provisional_values_during_the_day_then_the_fixing_closes_the_ohlc(store):
    base = {"REBAR": 3000.0, "HRC": 3300.0, "COTTON": 15000.0}
    add_trades(store, [t for code, p in base.items() for t in sufficient(code, D0, p)])
    with session_scope(store) as session:
        compute(session, D0, D0, now=at(D0, 15))

    add_trades(store, _batch(D1, 9, {"REBAR": 3030.0, "HRC": 3300.0, "COTTON": 15000.0}))
    with session_scope(store) as session:
        first = publish_provisional(session, at(D1, 10))
    assert (first.day, first.fixed, first.observations) == (D1, False, 6)
    assert first.assessments.new == 3 and first.index_values.new == 6
    with session_scope(store) as session:
        value = _current(session, "T", D1)
        # 1000 × (0.4 × 3030/3000 + 0.3 + 0.3) = 1004.
        assert (value.status, value.value) == ("provisional", pytest.approx(1004.0, rel=1e-12))

    add_trades(store, _batch(D1, 10, {"REBAR": 3090.0}))
    with session_scope(store) as session:
        second = publish_provisional(session, at(D1, 11))
        again = publish_provisional(session, at(D1, 11, 0, 30))  # nothing new: no new vintage
    assert second.index_values.new == 3  # REBAR, its sector and the composite moved
    assert again.index_values.new == again.assessments.new == 0
    with session_scope(store) as session:
        value = _current(session, "T", D1)
        # REBAR's VWAP is now (3030 + 3090) / 2 = 3060: 1000 × (0.4 × 1.02 + 0.6) = 1008.
        assert (value.status, value.vintage) == ("provisional", 2)
        assert value.value == pytest.approx(1008.0, rel=1e-12)
        ticks = session.scalar(
            select(models.IndexDefinition.id).where(models.IndexDefinition.code == "T")
        )
        assert [
            v.value
            for v in session.scalars(
                select(IntradayIndexValue)
                .where(IntradayIndexValue.index_id == ticks)
                .order_by(IntradayIndexValue.observed_at)
            )
        ] == pytest.approx([1004.0, 1008.0, 1008.0], rel=1e-12)

    with session_scope(store) as session:
        fixing = compute(session, D1, D1, now=at(D1, 15))
        late = publish_provisional(session, at(D1, 14, 59))  # a late run must not undo it
        evening = publish_provisional(session, at(D1, 15, 30))
    assert fixing.assessments.new == 3 and fixing.index_values.new == 6  # promoted to final
    assert late.fixed and late.index_values.new == 0
    assert evening.day == weekday(2) and evening.observations == 0
    with session_scope(store) as session:
        value = _current(session, "T", D1)
        assert (value.status, value.vintage, value.value) == ("final", 3, pytest.approx(1008.0))
        (ohlc,) = daily_ohlc(session, value.index_id, D1, D1)
        assert (ohlc.open, ohlc.high, ohlc.low, ohlc.close) == pytest.approx(
            (1004.0, 1008.0, 1004.0, 1008.0), rel=1e-12
        )
        assert (ohlc.observations, ohlc.status) == (3, "final")
        (flat,) = daily_ohlc(session, value.index_id, D0, D0)  # a day without intraday runs
        assert (flat.open, flat.close, flat.observations) == (1000.0, 1000.0, 0)


def test_a_provisional_run_on_a_public_holiday_is_for_the_next_publication_day(store):
    # Under the mainland calendar of the methodology in force, 1 and 2 January 2026 are
    # public holidays: trades stamped on them belong to the window of Monday 5 January.
    last, holiday, first = dt.date(2025, 12, 31), dt.date(2026, 1, 1), dt.date(2026, 1, 5)
    base = {"REBAR": 3000.0, "HRC": 3300.0, "COTTON": 15000.0}
    add_trades(store, [t for d in (D0, last) for c, p in base.items() for t in sufficient(c, d, p)])
    with session_scope(store) as session:
        compute(session, D0, last, now=at(last, 15))  # the days between: no trade, closed
    add_trades(store, _batch(holiday, 9, {"REBAR": 3030.0, "HRC": 3300.0, "COTTON": 15000.0}))
    with session_scope(store) as session:
        report = publish_provisional(session, at(holiday, 10))
    assert (report.day, report.fixed, report.observations) == (first, False, 6)
    with session_scope(store) as session:
        assert _current(session, "T", holiday) is None
        value = _current(session, "T", first)
        # 1000 × (0.4 × 3030/3000 + 0.3 + 0.3) = 1004.
        assert (value.status, value.value) == ("provisional", pytest.approx(1004.0, rel=1e-12))

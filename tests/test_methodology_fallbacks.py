"""The fallback hierarchy through the service, under the methodology in force: stale then
suspended, related commodities, market holidays, the cut-off, the rationale.

Every date is in March 2025 (3 to 12 March), which has no mainland public holiday, so the
mainland calendar of 2025.2 and the weekdays of 2025.1 agree on every publication day."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from core.calendar import Calendar
from core.methodology import in_force
from publication.fixing import compute
from store import models
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from store.reference import ensure_exchange
from tests.methodology_support import split_world

BEIJING = ZoneInfo("Asia/Shanghai")
MONDAY = dt.date(2025, 3, 3)

CATALOGUE = """
[index_family]
base_date = 2025-03-03
base_value = 1000.0

[composite]
code = "T"
name_en = "Test composite"
name_zh = "测试综合指数"

[[sectors]]
code = "ferrous"
index_code = "T-FER"
name_en = "Ferrous"
name_zh = "黑色"

[[sectors]]
code = "agriculture"
index_code = "T-AGR"
name_en = "Agriculture"
name_zh = "农产品"

[[commodities]]
code = "REBAR"
name_en = "Rebar"
name_zh = "螺纹钢"
sector = "ferrous"
unit = "t"
currency = "CNY"
weight = 0.4
listed_on = 2020-01-01
price_band = [1000.0, 10000.0]
spec = { description = "rebar" }

[[commodities]]
code = "HRC"
name_en = "Hot-rolled coil"
name_zh = "热轧卷板"
sector = "ferrous"
unit = "t"
currency = "CNY"
weight = 0.3
listed_on = 2020-01-01
price_band = [1000.0, 10000.0]
spec = { description = "hrc" }

[[commodities]]
code = "COTTON"
name_en = "Cotton"
name_zh = "棉花"
sector = "agriculture"
unit = "t"
currency = "CNY"
weight = 0.3
listed_on = 2020-01-01
price_band = [1000.0, 30000.0]
spec = { description = "cotton" }
"""


def add_trades(engine, rows) -> None:
    """Store trades directly: (exchange, trade id, commodity, traded_at, price, quantity)."""
    with session_scope(engine) as session:
        commodities = {c.code: c for c in session.scalars(select(models.Commodity))}
        batches = {}
        for code in sorted({row[0] for row in rows}):
            exchange = ensure_exchange(session, code)
            batch = models.IngestBatch(exchange_id=exchange.id, source="test", sha256="0" * 64)
            session.add(batch)
            session.flush()
            batches[code] = (exchange.id, batch.id)
        for exchange, trade_id, commodity, traded_at, price, quantity in rows:
            item = commodities[commodity]
            session.add(
                models.Trade(
                    exchange_id=batches[exchange][0],
                    batch_id=batches[exchange][1],
                    trade_id=trade_id,
                    commodity_id=item.id,
                    traded_at=traded_at,
                    price_raw=price,
                    quantity_raw=quantity,
                    currency_raw=item.currency,
                    unit_raw=item.unit,
                    price=price,
                    quantity=quantity,
                )
            )


def weekday(n: int) -> dt.date:
    """The n-th weekday from Monday 3 March 2025 (0-based)."""
    return MONDAY + dt.timedelta(days=n + 2 * (n // 5))


def at(day: dt.date, hh: int, mm: int = 0, ss: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=BEIJING)


def sufficient(code: str, day: dt.date, price: float) -> list[tuple]:
    """Three trades of 200 t on two exchanges around ``price``: VWAP exactly ``price``."""
    return [
        ("X", f"{code}-{day}-1", code, at(day, 10), price, 200.0),
        ("Y", f"{code}-{day}-2", code, at(day, 11), price + 1.0, 200.0),
        ("X", f"{code}-{day}-3", code, at(day, 14), price - 1.0, 200.0),
    ]


def lone(code: str, day: dt.date, price: float) -> list[tuple]:
    return [("X", f"{code}-{day}-lone", code, at(day, 10, 30), price, 200.0)]


@pytest.fixture
def store(database_url):
    engine = make_engine(database_url)
    prepare_database(engine, *split_world(CATALOGUE))
    yield engine
    engine.dispose()


def _assessments(engine, code: str) -> dict[dt.date, models.Assessment]:
    with session_scope(engine) as session:
        rows = session.scalars(
            select(models.Assessment)
            .join(models.Commodity, models.Commodity.id == models.Assessment.commodity_id)
            .where(models.Commodity.code == code, models.Assessment.superseded_at.is_(None))
        ).all()
    return {row.date: row for row in rows}


def _values(engine, code: str) -> dict[dt.date, models.IndexValue]:
    with session_scope(engine) as session:
        rows = session.scalars(
            select(models.IndexValue)
            .join(models.IndexDefinition, models.IndexDefinition.id == models.IndexValue.index_id)
            .where(models.IndexDefinition.code == code, models.IndexValue.superseded_at.is_(None))
        ).all()
    return {row.date: row for row in rows}


def test_the_test_days_are_publication_days_under_the_methodology_in_force():
    # Guard for the dates above: every weekday they use is a publication day.
    days = [weekday(k) for k in range(8)]
    assert Calendar(in_force(MONDAY)).publication_days(days[0], days[-1]) == days


def test_too_few_trades_is_stale_for_n_days_then_suspended(store):
    n = in_force(MONDAY).assessment.stale_days
    assert n == 5
    days = [weekday(k) for k in range(n + 3)]  # D0 .. D7
    trades = sufficient("REBAR", days[0], 3000.0) + sufficient("REBAR", days[-1], 3300.0)
    for day in days[1:-1]:
        trades += lone("REBAR", day, 3100.0)  # one trade: below every sufficiency test
    for day in days:
        trades += sufficient("HRC", day, 3200.0) if day in (days[0], days[-1]) else []
        trades += sufficient("COTTON", day, 15000.0)
    add_trades(store, trades)
    with session_scope(store) as session:
        report = compute(session, days[0], days[-1], now=at(days[-1], 15))
    assert report.fallbacks == {"none": 2 + 2 + len(days), "stale": 2 * n, "suspended": 2}

    rebar = _assessments(store, "REBAR")
    assert rebar[days[0]].fallback == "none" and rebar[days[0]].price == 3000.0
    for k in range(1, n + 1):
        stale = rebar[days[k]]
        assert (stale.fallback, stale.price, stale.high, stale.low) == ("stale", 3000.0, None, None)
        why = stale.rationale
        assert why["fallback"] == {
            "level": 2,
            "name": "stale",
            "last_assessment": days[0].isoformat(),
            "stale_days": k,
            "max_stale_days": n,
            "carried_price": 3000.0,
        }
        assert why["sufficiency"] == {
            "met": False,
            "failed": ["min_trades", "min_volume", "min_exchanges", "max_exchange_share"],
        }
        assert why["trades_used"] == []
        assert why["excluded"] == [
            {
                "exchange": "X",
                "trade_id": f"REBAR-{days[k]}-lone",
                "price": 3100.0,
                "quantity": 200.0,
                "rule": "insufficient_data",
            }
        ]
        assert why["methodology_version"] == in_force(MONDAY).version == stale.methodology_version
    suspended = rebar[days[n + 1]]
    assert (suspended.fallback, suspended.price, suspended.high) == ("suspended", None, None)
    assert suspended.rationale["fallback"] == {
        "level": 3,
        "name": "suspended",
        "last_assessment": days[0].isoformat(),
        "stale_days": n + 1,
        "max_stale_days": n,
    }
    assert rebar[days[-1]].fallback == "none" and rebar[days[-1]].price == 3300.0

    # The commodity index stands still while stale, has no value while suspended.
    index = _values(store, "REBAR")
    assert [index[d].value for d in days[: n + 1]] == pytest.approx([1000.0] * (n + 1), rel=1e-12)
    assert days[n + 1] not in index
    assert index[days[-1]].value == pytest.approx(1100.0, rel=1e-12)
    # The composite carries the suspended constituent's last level and says so.
    why = _values(store, "T")[days[n + 1]].rationale
    member = next(c for c in why["constituents"] if c["code"] == "REBAR")
    assert (member["fallback"], member["level_date"]) == ("suspended", days[n].isoformat())
    assert member["level"] == pytest.approx(1000.0, rel=1e-12)

    # The daily fixing, one day at a time, publishes the very same assessments.
    again = make_engine(str(store.url.render_as_string(hide_password=False)))
    with session_scope(again) as session:
        for day in days:
            compute(session, day, day, now=at(day, 15))
    assert {d: a.vintage for d, a in _assessments(store, "REBAR").items()} == dict.fromkeys(days, 1)
    again.dispose()


def test_related_commodity_with_the_last_common_spread_is_the_first_fallback(store):
    d0, d1 = weekday(0), weekday(1)
    trades = sufficient("REBAR", d0, 3000.0) + sufficient("HRC", d0, 3300.0)
    trades += lone("REBAR", d1, 2900.0) + sufficient("HRC", d1, 3630.0)
    trades += sufficient("COTTON", d0, 15000.0) + sufficient("COTTON", d1, 15000.0)
    add_trades(store, trades)
    with session_scope(store) as session:
        compute(session, d0, d1, now=at(d1, 15))
    related = _assessments(store, "REBAR")[d1]
    # 3630 × 3000 / 3300 = 3300; high and low are HRC's, scaled the same way.
    assert related.fallback == "related"
    assert related.price == pytest.approx(3300.0, rel=1e-12)
    assert related.high == pytest.approx(3631.0 * 3000 / 3300, rel=1e-12)
    assert related.rationale["fallback"] == {
        "level": 1,
        "name": "related",
        "commodity": "HRC",
        "related_price": 3630.0,
        "spread_date": d0.isoformat(),
        "spread_price": 3000.0,
        "spread_related_price": 3300.0,
        "factor": 3000.0 / 3300.0,
        "spread_age_days": 1,
    }
    assert [t["trade_id"] for t in related.rationale["trades_used"]] == [
        f"HRC-{d1}-1",
        f"HRC-{d1}-2",
        f"HRC-{d1}-3",
    ]
    assert related.rationale["excluded"][0]["rule"] == "insufficient_data"


def test_a_day_without_any_trade_is_a_market_holiday(store):
    d0, holiday, d2 = weekday(0), weekday(1), weekday(2)
    trades = sufficient("REBAR", d0, 3000.0) + lone("REBAR", d2, 3100.0)
    trades += sufficient("HRC", d0, 3300.0) + lone("HRC", d2, 3300.0)
    trades += sufficient("COTTON", d0, 15000.0) + sufficient("COTTON", d2, 15000.0)
    add_trades(store, trades)
    with session_scope(store) as session:
        report = compute(session, d0, d2, now=at(d2, 15))
    assert report.closed_days == [holiday]
    rebar = _assessments(store, "REBAR")
    assert holiday not in rebar and holiday not in _values(store, "T")
    assert rebar[d2].rationale["fallback"]["stale_days"] == 1  # the holiday does not count


def test_cut_off_and_rationale_listing(store):
    d0, d1 = weekday(0), weekday(1)
    trades = [
        ("X", "at-cutoff", "COTTON", at(d0, 15), 15000.0, 200.0),
        ("Y", "after-cutoff", "COTTON", at(d0, 15, 0, 1), 15100.0, 200.0),
        ("X", "small-lot", "COTTON", at(d0, 9, 5), 15000.0, 5.0),
        ("X", "outlier", "COTTON", at(d0, 9, 10), 18000.0, 20.0),
    ]
    trades += [("Y", f"c{k}", "COTTON", at(d0, 9 + k), 15000.0 + k, 100.0) for k in range(4)]
    trades += sufficient("COTTON", d1, 15000.0)
    add_trades(store, trades)
    with session_scope(store) as session:
        report = compute(session, d0, d1, now=at(d0, 15, 30))
    assert report.pending_days == [d1]  # its window had not closed
    cotton = _assessments(store, "COTTON")
    assert set(cotton) == {d0}
    why = cotton[d0].rationale
    used = {t["trade_id"] for t in why["trades_used"]}
    assert "at-cutoff" in used and "after-cutoff" not in used
    assert {t["trade_id"]: t["rule"] for t in why["excluded"]} == {
        "small-lot": "min_lot",
        "outlier": "outlier_sigma",
    }
    assert why["window"] == {
        "trading_day": d0.isoformat(),
        "opens_after": at(d0 - dt.timedelta(days=3), 15).isoformat(),
        "closes_at": at(d0, 15).isoformat(),
    }
    assert why["parameters"]["min_lot"] == 10.0 and why["parameters"]["k"] == 2.0
    assert why["statistics"]["window_trades"] == 7 and why["statistics"]["lot_trades"] == 6
    with session_scope(store) as session:
        compute(session, d1, d1, now=at(d1, 15))
    assert "after-cutoff" in {
        t["trade_id"] for t in _assessments(store, "COTTON")[d1].rationale["trades_used"]
    }

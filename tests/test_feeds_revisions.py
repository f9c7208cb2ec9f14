"""Cancels and amends: the history kept, duplicates recognised, restatement marks written."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from store import models
from store.db import session_scope
from store.models import TradeRevision
from tests.feeds_support import client_for, exchange_key, push, stored_counts, stored_trades, trade

MARCH_3 = dt.date(2025, 3, 3)
MARCH_4 = dt.date(2025, 3, 4)


@pytest.fixture
def api(engine, database_url, tmp_path):
    with client_for(database_url, tmp_path / "archive") as client:
        client.engine = engine
        client.key = exchange_key(engine, "BJCX")
        yield client


def _publish(engine, code: str, day: dt.date) -> None:
    with session_scope(engine) as session:
        commodity = session.scalar(select(models.Commodity).where(models.Commodity.code == code))
        session.add(
            models.Assessment(
                commodity_id=commodity.id,
                date=day,
                price=3300.0,
                trades=1,
                volume=10.0,
                high=3300.0,
                low=3300.0,
                exchanges=1,
                status="final",
                methodology_version="test",
                inputs_hash="x",
            )
        )


def _marks(engine) -> list[tuple[str, dt.date, str]]:
    with session_scope(engine) as session:
        return sorted(
            session.execute(
                select(
                    models.Commodity.code,
                    models.RestatementMark.date,
                    models.RestatementMark.reason,
                )
                .join(models.Commodity)
                .where(models.RestatementMark.cleared_at.is_(None))
            ).all()
        )


def test_an_amend_replaces_the_values_and_keeps_the_old_ones(api):
    push(api, api.key, [trade("T1", seq="1")])
    answer = push(api, api.key, [trade("T1", action="amend", price="3350", quantity="12", seq="2")])
    assert answer.json()["amended"] == 1 and answer.json()["accepted"] == 1
    stored = stored_trades(api.engine)["T1"]
    assert (stored.price, stored.quantity, stored.revision, stored.seq) == (3350.0, 12.0, 1, 2)

    shown = api.get("/v1/trades/T1", headers={"X-API-Key": api.key}).json()
    assert shown["price"] == 3350.0 and shown["revision"] == 1
    [revision] = shown["revisions"]
    assert revision["action"] == "amend"
    assert (revision["previous"]["price"], revision["previous"]["quantity"]) == (3300.0, 10.0)
    assert revision["previous"]["seq"] == 1


def test_a_cancel_takes_the_trade_out_and_keeps_it(api):
    push(api, api.key, [trade("T1"), trade("T2")])
    answer = push(api, api.key, [{"trade_id": "T1", "action": "cancel", "seq": "9"}])
    assert answer.json()["cancelled"] == 1
    stored = stored_trades(api.engine)
    assert stored["T1"].status == "cancelled" and stored["T1"].price == 3300.0
    assert stored["T2"].status == "active"

    amend = push(api, api.key, [trade("T1", action="amend", price="3400")]).json()
    assert [r["code"] for r in amend["rejections"]] == ["trade_cancelled"]
    assert stored_trades(api.engine)["T1"].price == 3300.0


def test_revisions_are_applied_once_and_in_order(api):
    first = trade("T1", action="amend", price="3310", seq="2")
    second = trade("T1", action="amend", price="3320", seq="3")
    push(api, api.key, [trade("T1", seq="1")])
    answer = push(api, api.key, [first, second]).json()
    assert answer["amended"] == 2
    assert stored_trades(api.engine)["T1"].price == 3320.0
    counts = stored_counts(api.engine)

    # the older amend arriving again is a duplicate, not a step back
    again = push(api, api.key, [first]).json()
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    assert stored_trades(api.engine)["T1"].price == 3320.0
    assert stored_counts(api.engine) == counts
    cancel = {"trade_id": "T1", "action": "cancel"}
    assert push(api, api.key, [cancel]).json()["cancelled"] == 1
    assert push(api, api.key, [cancel]).json()["duplicates"] == 1
    with session_scope(api.engine) as session:
        actions = session.scalars(select(TradeRevision.action).order_by(TradeRevision.id)).all()
    assert actions == ["amend", "amend", "cancel"]


def test_a_new_trade_and_its_amend_in_one_batch(api):
    answer = push(api, api.key, [trade("T1"), trade("T1", action="amend", price="3301")]).json()
    assert (answer["accepted"], answer["amended"], answer["rejected"]) == (2, 1, 0)
    assert stored_trades(api.engine)["T1"].price == 3301.0


def test_changes_to_a_published_day_mark_it_for_restatement(api):
    push(
        api, api.key, [trade("T1"), trade("T2"), trade("T3", traded_at="2025-03-05T10:00:00+08:00")]
    )
    _publish(api.engine, "REBAR", MARCH_3)
    _publish(api.engine, "REBAR", MARCH_4)
    assert _marks(api.engine) == []

    push(api, api.key, [trade("LATE")])  # a late trade for the published 3 March
    push(api, api.key, [trade("EARLY", traded_at="2025-03-05T11:00:00+08:00")])  # unpublished
    assert _marks(api.engine) == [("REBAR", MARCH_3, "late_trade")]

    push(api, api.key, [{"trade_id": "T1", "action": "cancel"}])
    # an amend that moves a trade from 3 to 4 March changes both days
    push(api, api.key, [trade("T2", action="amend", traded_at="2025-03-04T10:00:00+08:00")])
    # a trade of the unpublished 5 March moves to another commodity: nothing to restate
    push(
        api,
        api.key,
        [trade("T3", action="amend", commodity="HRC", traded_at="2025-03-05T10:00:00+08:00")],
    )
    assert _marks(api.engine) == [
        ("REBAR", MARCH_3, "late_trade"),
        ("REBAR", MARCH_3, "trade_amended"),
        ("REBAR", MARCH_3, "trade_cancelled"),
        ("REBAR", MARCH_4, "trade_amended"),
    ]
    # an open mark is not repeated; a duplicate changes nothing at all
    counts = stored_counts(api.engine)
    push(api, api.key, [trade("LATE2")])
    push(api, api.key, [trade("LATE")])
    assert stored_counts(api.engine)["marks"] == counts["marks"]


def test_a_late_trade_marks_the_publication_day_whose_window_holds_it(api):
    """Under the mainland calendar a trade belongs to the window of the first publication
    day whose 15:00 cut-off is at or after it (by hand: Sat 1 and Sun 2 March 2025 are no
    publication days, Fri 28 February after 15:00 falls in Monday 3 March's window, and
    Mon 3 March after 15:00 in Tuesday 4 March's)."""
    _publish(api.engine, "REBAR", MARCH_3)
    push(api, api.key, [trade("SAT", traded_at="2025-03-01T10:00:00+08:00")])
    assert _marks(api.engine) == [("REBAR", MARCH_3, "late_trade")]

    _publish(api.engine, "HRC", MARCH_3)
    push(api, api.key, [trade("AFTER", commodity="HRC", traded_at="2025-03-03T15:00:01+08:00")])
    assert _marks(api.engine) == [("REBAR", MARCH_3, "late_trade")]  # 4 March: unpublished
    push(api, api.key, [trade("FRI", commodity="HRC", traded_at="2025-02-28T15:00:01+08:00")])
    assert _marks(api.engine) == [("HRC", MARCH_3, "late_trade"), ("REBAR", MARCH_3, "late_trade")]

    # A second past Friday's cut-off is Monday's; the cut-off itself is still Friday's.
    february_28 = dt.date(2025, 2, 28)
    _publish(api.engine, "PTA", february_28)
    _publish(api.engine, "PTA", MARCH_3)
    pta = {"commodity": "PTA", "price": "4700"}
    push(api, api.key, [trade("PAST", **pta, traded_at="2025-02-28T15:00:01+08:00")])
    assert [m for m in _marks(api.engine) if m[0] == "PTA"] == [("PTA", MARCH_3, "late_trade")]
    push(api, api.key, [trade("AT", **pta, traded_at="2025-02-28T15:00:00+08:00")])
    assert [m for m in _marks(api.engine) if m[0] == "PTA"] == [
        ("PTA", february_28, "late_trade"),
        ("PTA", MARCH_3, "late_trade"),
    ]

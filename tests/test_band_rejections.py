"""The price band acts in sight: rows it refuses at ingest are counted, with the band, in
the rationale of the publication day whose window they would have fallen in."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from core.calendar import Calendar
from ingest.files import ingest_file
from publication.fixing import compute
from store import models
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from store.reference import ensure_exchange
from tests.test_composite import FEED, LOOSE, SMALL

BAND = [1000.0, 10000.0]  # rebar's, in the small world
FAT_FINGERS = [
    "F1,REBAR,2026-01-05T10:30:00+08:00,33000,50,CNY,t",  # 3300 typed with an extra 0
    "F2,REBAR,2026-01-02T11:00:00+08:00,330,50,CNY,t",  # a holiday: 5 Jan's window
    "F3,COTTON,2026-01-06T10:00:00+08:00,135000,1,CNY,t",
]


def test_refused_rows_are_counted_in_the_rationale_of_their_day(database_url, tmp_path):
    engine = make_engine(database_url)
    prepare_database(engine, SMALL, LOOSE)
    feed = tmp_path / "feed.csv"
    feed.write_text("\n".join(FEED + FAT_FINGERS) + "\n")
    calendar = Calendar(LOOSE)
    with session_scope(engine) as session:
        ensure_exchange(session, "X")
    with session_scope(engine) as session:
        result = ingest_file(session, SMALL, feed, "X", calendar=calendar)
    assert (result.accepted, result.rejected) == (12, 3)
    with session_scope(engine) as session:
        compute(session, dt.date(2025, 12, 30), dt.date(2026, 1, 6), calendar=calendar)
    with session_scope(engine) as session:
        rationale = {
            (code, a.date): (a.price, a.rationale)
            for a, code in session.execute(
                select(models.Assessment, models.Commodity.code).join(
                    models.Commodity, models.Commodity.id == models.Assessment.commodity_id
                )
            )
        }
    price, why = rationale[("REBAR", dt.date(2026, 1, 5))]
    assert price == 3 * 1210.0  # the refused rows move nothing
    assert why["rejected_at_ingest"] == {
        "price_out_of_band": {"rows": 2, "bands": [{"band": BAND, "rows": 2}]}
    }
    _, why = rationale[("COTTON", dt.date(2026, 1, 6))]
    assert why["rejected_at_ingest"]["price_out_of_band"]["rows"] == 1
    assert why["rejected_at_ingest"]["price_out_of_band"]["bands"][0]["band"] == [1000.0, 30000.0]
    for day in (dt.date(2025, 12, 30), dt.date(2025, 12, 31), dt.date(2026, 1, 6)):
        assert "rejected_at_ingest" not in rationale[("REBAR", day)][1]
    engine.dispose()

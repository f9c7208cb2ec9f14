"""One door for every change to a published value.

Three exchanges trade every commodity every calendar day from 13 October 2025 to 6 January
2026; the weights effective on 1 January 2026 are announced on 3 November. The fixings run
day by day. Then, on 7 January:

- a cotton trade of 6 January arrives late (inside the correction window);
- a rebar trade of 14 October arrives late (outside the window: frozen);
- a rebar trade of 31 December, the link day of the 2026 weights, is amended;
- the sweep runs, then the rebalance is applied two publication days late;
- ``bcpi compute`` is run again over everything published.

Every value that changed has exactly one correction notice, with the reason the rules of
METHODOLOGY.md give (a constituent's amend on or before the date: ``trade_amended``; a late
trade: ``late_trade``; the rebalance: ``rebalance``); nothing else changed; the
normalising constant of 2026 that the first 5 January values used is still shown as of
then; and ``bcpi audit replay`` reproduces every vintage, bit for bit.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from itertools import pairwise

import polars as pl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from api.app import create_app
from core.settings import get_settings
from ingest.archive import archive_bytes
from ingest.batch import ingest_frame
from ingest.readers import read_body
from publication.fixing import compute
from publication.rebalance import announce, apply
from publication.restatement import sweep
from store import models
from store.db import make_engine, session_scope
from tests.calendar_support import SHANGHAI, World, fed, feed, world

START, LAST = dt.date(2025, 10, 13), dt.date(2026, 1, 6)
LINK, REBALANCE = dt.date(2025, 12, 31), dt.date(2026, 1, 5)
OUTSIDE = dt.date(2025, 10, 14)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), SHANGHAI)


SWEPT_AT = at(dt.date(2026, 1, 7), 9)
APPLIED_AT = at(dt.date(2026, 1, 7), 10)
TRADE = ["trade_id", "commodity", "traded_at", "price", "quantity", "currency", "unit"]


@pytest.fixture(scope="module")
def autumn(tmp_path_factory) -> World:
    return world(tmp_path_factory.mktemp("one-door"), START, LAST)


def _push(engine, catalogue, settings, rows: list[dict]) -> None:
    """A batch as an exchange pushes it: archived as JSON, then stored (so replayable)."""
    body = json.dumps(rows).encode()
    archived = archive_bytes(settings.archive_dir, "BJCX", body, "json")
    with session_scope(engine) as session:
        result = ingest_frame(
            session,
            catalogue,
            read_body(body, "json"),
            exchange_code="BJCX",
            source="http",
            fmt="json",
            sha256=archived.sha256,
            archive_path=archived.path,
            settings=settings,
        )
    assert result.rejected == 0, result.rejections


def _vintages(session) -> dict[tuple[str, dt.date], list[models.IndexValue]]:
    out: dict[tuple[str, dt.date], list[models.IndexValue]] = {}
    for value, code in session.execute(
        select(models.IndexValue, models.IndexDefinition.code)
        .join(models.IndexDefinition)
        .order_by(models.IndexValue.vintage)
    ):
        out.setdefault((code, value.date), []).append(value)
    return out


def test_every_change_has_one_notice_with_its_reason_and_replays(
    autumn, database_url, tmp_path, monkeypatch
):
    from cli.main import app as cli

    settings = fed(database_url, tmp_path, autumn)
    catalogue = autumn.catalogue
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        compute(session, START, dt.date(2025, 10, 31), now=at(dt.date(2025, 10, 31), 16))
    with session_scope(engine) as session:
        announce(session, 2026, at(dt.date(2025, 11, 3), 8), catalogue=catalogue)
    with session_scope(engine) as session:
        compute(session, dt.date(2025, 11, 3), LINK, now=at(LINK, 16))
    with session_scope(engine) as session:
        compute(session, REBALANCE, LAST, now=at(LAST, 16))
    before_sweep = _current_values(engine)

    amended = (
        feed("BJCX", 100, START, LAST)
        .filter(
            (pl.col("commodity") == "REBAR") & pl.col("traded_at").str.starts_with("2025-12-31")
        )
        .row(0, named=True)
    )
    _push(
        engine,
        catalogue,
        settings,
        [
            dict(
                zip(
                    TRADE,
                    ["LATE-IN", "COTTON", f"{LAST}T11:00:00+08:00", "15500", "40", "CNY", "t"],
                    strict=True,
                )
            ),
            dict(
                zip(
                    TRADE,
                    ["LATE-OUT", "REBAR", f"{OUTSIDE}T11:00:00+08:00", "3900", "400", "CNY", "t"],
                    strict=True,
                )
            ),
        ],
    )
    amend = {k: amended[k] for k in TRADE} | {"price": "3950", "action": "amend"}
    _push(engine, catalogue, settings, [amend])

    with session_scope(engine) as session:
        swept = sweep(session, SWEPT_AT)
    assert swept.window_start == dt.date(2025, 12, 30) and swept.expired == 1
    with session_scope(engine) as session:
        applied = apply(session, REBALANCE, APPLIED_AT)
    assert applied.status == "effective" and applied.restated_from == REBALANCE

    monkeypatch.setenv("BCPI_DATABASE_URL", database_url)
    monkeypatch.setenv("BCPI_ARCHIVE_DIR", str(settings.archive_dir))
    monkeypatch.setenv("BCPI_CATALOGUE_PATH", str(autumn.catalogue_path))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        rerun = runner.invoke(cli, ["compute", "--start", str(START), "--end", str(LAST)])
        replayed = runner.invoke(cli, ["audit", "replay", "--all"])
    finally:
        get_settings.cache_clear()
    assert rerun.exit_code == 0, rerun.output
    assert "correction notices" not in rerun.output  # nothing published anew
    assert replayed.exit_code == 0, replayed.output
    assert "every published value replayed bit-identical" in replayed.output

    with session_scope(engine) as session:
        vintages = _vintages(session)
        notices = session.execute(
            select(models.Correction, models.IndexDefinition.code).join(models.IndexDefinition)
        ).all()
    engine.dispose()

    # Every replaced fixed vintage has exactly one notice, and every notice one replacement.
    replaced = Counter(
        (code, day, old.vintage, new.vintage)
        for (code, day), chain in vintages.items()
        for old, new in pairwise(chain)
        if old.status in models.FIXED
    )
    noticed = Counter((code, c.date, c.old_vintage, c.new_vintage) for c, code in notices)
    assert replaced == noticed and replaced
    assert all(count == 1 for count in noticed.values())

    reasons = {(code, c.date, c.published_at): c for c, code in notices}
    swept_at, applied_at = SWEPT_AT.astimezone(dt.UTC), APPLIED_AT.astimezone(dt.UTC)
    # The amend on the link day reaches every value that rests on rebar's 31 December level.
    assert reasons[("REBAR", LINK, swept_at)].reason == "trade_amended"
    assert reasons[("BCPI-FER", REBALANCE, swept_at)].reason == "trade_amended"
    assert reasons[("BCPI", LAST, swept_at)].reason == "trade_amended"
    # The late cotton trade of 6 January reaches cotton and its sector alone.
    assert reasons[("COTTON", LAST, swept_at)].reason == "late_trade"
    assert reasons[("BCPI-AGR", LAST, swept_at)].reason == "late_trade"
    assert "batch" in reasons[("COTTON", LAST, swept_at)].cause
    # Rebar's own index on 5 January rests on 5 January's price only: not restated.
    assert ("REBAR", REBALANCE, swept_at) not in reasons
    # The late rebalance restates the composite and the sectors from 5 January.
    by_rebalance = {(code, day) for code, day, when in reasons if when == applied_at}
    assert ("BCPI", REBALANCE) in by_rebalance and ("BCPI", LAST) in by_rebalance
    assert {reasons[(code, day, applied_at)].reason for code, day in by_rebalance} == {"rebalance"}
    assert not any(c.forced for c, _ in notices)
    # Outside the window the late trade changed nothing.
    assert [v.vintage for v in vintages[("REBAR", OUTSIDE)]] == [1]
    assert [v.vintage for v in vintages[("BCPI", OUTSIDE)]] == [1]

    # The constant of 2026 that the first 5 January values rest on is still shown as of then.
    with TestClient(create_app(settings)) as client:
        then = client.get(
            "/v1/indices/BCPI", params={"as_of": (swept_at - dt.timedelta(seconds=1)).isoformat()}
        ).json()
        now = client.get("/v1/indices/BCPI").json()
        frozen_day = client.get("/v1/indices/REBAR/explain", params={"date": str(OUTSIDE)}).json()
    # The late trade for the frozen day is shown beside the value it did not change (the
    # feed itself was stored after the simulated publication: it counts as well).
    why = frozen_day["constituents"][0]["assessment"]["rationale"]
    late = why["arrived_after_publication"]
    assert late == {
        "trades": why["statistics"]["window_trades"] + 1,
        "after_correction_window": True,
    }
    first_2026 = vintages[("BCPI", REBALANCE)][0]
    old_constant = next(c for c in then["constants"] if c["effective_from"] == "2026-01-01")
    new_constant = next(c for c in now["constants"] if c["effective_from"] == "2026-01-01")
    assert old_constant["value"] == first_2026.rationale["normalising_constant"]
    assert old_constant["value"] == before_sweep[("BCPI", LINK)]
    assert new_constant["vintage"] > old_constant["vintage"]
    assert new_constant["value"] == vintages[("BCPI", LINK)][-1].value


def _current_values(engine) -> dict[tuple[str, dt.date], float]:
    with session_scope(engine) as session:
        return {
            (code, v.date): v.value
            for v, code in session.execute(
                select(models.IndexValue, models.IndexDefinition.code)
                .join(models.IndexDefinition)
                .where(models.IndexValue.superseded_at.is_(None))
            )
        }

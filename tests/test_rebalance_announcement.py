"""An announcement stands, is served, is replaced only with a reason (with notices), and is
applied exactly as announced; a new commodity phases in over 2026.1's two rebalances.

The world (2026.1's rules, bounds that never bind): ALPHA, BRAVO, CHARLIE with production
values 40, 30, 20 (shares 4/9, 1/3, 2/9), each traded once on 16 June 2025 for 400, 300 and
200 CNY. By hand, the weights effective on 1 January 2026 are 2/3 × traded share + 1/3 ×
production share = 4/9, 1/3, 2/9. A late CHARLIE trade of 300 makes the traded shares
400 : 300 : 500 of 1200 and the weights 2/3 × (1/3, 1/4, 5/12) + 1/3 × (4/9, 1/3, 2/9) =
10/27, 5/18, 19/54.
"""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from cli.main import app as cli
from core.calendar import Calendar
from core.errors import InvalidInput, RebalanceError
from core.methodology import in_force
from publication.correction import published_notices
from publication.rebalance import announce, apply
from store import models
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from tests.rebalance_support import at, composite_weights, members, world
from tests.support_api import app_for
from tests.test_methodology_fallbacks import add_trades

JUNE = dt.date(2025, 6, 16)
EFFECTIVE, APPLIED_ON = dt.date(2026, 1, 1), dt.date(2026, 1, 5)
ANNOUNCED = at(dt.date(2025, 11, 3), 8)
FIRST = {"ALPHA": 4 / 9, "BRAVO": 1 / 3, "CHARLIE": 2 / 9}
REPLACED = {"ALPHA": 10 / 27, "BRAVO": 5 / 18, "CHARLIE": 19 / 54}
REL = 1e-12


def _once(day: dt.date, values: dict[str, float], tag: str = "") -> list[tuple]:
    return [
        ("X", f"{code}-{day}{tag}", code, at(day, 10), 100.0, value / 100)
        for code, value in values.items()
    ]


@pytest.fixture
def store(database_url):
    catalogue, methodology = world("2026.1", {"ALPHA": 40.0, "BRAVO": 30.0, "CHARLIE": 20.0})
    engine = make_engine(database_url)
    prepare_database(engine, catalogue, methodology)
    add_trades(engine, _once(JUNE, {"ALPHA": 400, "BRAVO": 300, "CHARLIE": 200}))
    yield engine, catalogue, Calendar(methodology)
    engine.dispose()


def _announce(store, now=ANNOUNCED, year=2026, **options):
    engine, catalogue, calendar = store
    with session_scope(engine) as session:
        return announce(session, year, now, calendar=calendar, catalogue=catalogue, **options)


def test_an_announcement_stands_is_served_replaced_with_notices_and_applied_as_announced(
    store, database_url, tmp_path
):
    engine = store[0]
    client = TestClient(app_for(database_url, tmp_path))
    url = "/v1/indices/T/weights?effective=2026-01-01"
    before = client.get(url).json()
    assert (before["status"], before["effective_from"]) == ("methodology", "2025-01-02")

    first = _announce(store)
    assert first.weights == pytest.approx(FIRST, rel=REL)
    assert first.caps == {"commodity_cap": 1.0, "sector_cap": 1.0, "floor": 0.0}
    served = client.get(url).json()
    assert served["status"] == "announced" and served["announcement"] == 1
    assert served["announced_at"].startswith("2025-11-03T00:00:00")
    assert (served["data_from"], served["data_to"]) == ("2024-11-01", "2025-10-31")
    assert served["caps"] == {"commodity_cap": 1.0, "sector_cap": 1.0, "floor": 0.0}
    assert (served["traded_value"], served["data_year_cut"]) == ("qualifying", "cutoff")
    weights = {m["code"]: m["weight"] for m in served["members"]}
    assert weights == pytest.approx(FIRST, rel=REL)
    # Announced weights answer for dates from their effective date on, before they apply.
    assert (
        client.get("/v1/indices/T/weights?effective=2026-06-30").json()["weight_set"]
        == (served["weight_set"])
    )

    with pytest.raises(RebalanceError) as refused:
        _announce(store, now=ANNOUNCED + dt.timedelta(days=1))
    message = refused.value.message
    assert "already announced at 2025-11-03 00:00 UTC" in message
    assert f"weight set {served['weight_set']}" in message
    assert "--replace --reason TEXT" in message
    with pytest.raises(InvalidInput) as no_reason:
        _announce(store, replace=True, reason="  ")
    assert no_reason.value.field == "reason"

    add_trades(engine, _once(dt.date(2025, 6, 17), {"CHARLIE": 300}, "late"))
    replaced_at = ANNOUNCED + dt.timedelta(days=2)
    second = _announce(store, now=replaced_at, replace=True, reason="a late CHARLIE trade")
    assert second.weights == pytest.approx(REPLACED, rel=REL)
    assert [(n.index, n.date, n.reason) for n in second.notices] == [
        ("T", EFFECTIVE, "rebalance")
    ] * 3
    with session_scope(engine) as session:
        notices = published_notices(session, since=replaced_at)
    by_code = {n.cause.split("'s weight")[0].rsplit(" ", 1)[1]: n for n in notices}
    assert set(by_code) == set(FIRST)
    for code, notice in by_code.items():
        assert (notice.old_value, notice.new_value) == (
            pytest.approx(FIRST[code], rel=REL),
            pytest.approx(REPLACED[code], rel=REL),
        )
        assert (notice.old_vintage, notice.new_vintage) == (1, 2)
        assert "a late CHARLIE trade" in notice.cause
    assert len(client.get("/v1/corrections").json()["corrections"]) == 3

    served = client.get(url).json()  # a fresh answer: the announcement changed the data
    assert served["announcement"] == 2 and served["status"] == "announced"
    assert served["replaces"]["reason"] == "a late CHARLIE trade"
    assert served["replaces"]["weights"] == pytest.approx(FIRST, rel=REL)
    assert {m["code"]: m["weight"] for m in served["members"]} == pytest.approx(REPLACED, rel=REL)
    sector = client.get("/v1/indices/T-CHARLIE/weights?effective=2026-01-01").json()
    assert [(m["code"], m["weight"]) for m in sector["members"]] == [("CHARLIE", 1.0)]
    assert sector["members"][0]["composite_weight"] == pytest.approx(19 / 54, rel=REL)

    # Trades change after the announcement; the application uses the announced weights.
    add_trades(engine, _once(dt.date(2025, 6, 18), {"ALPHA": 5000}, "later"))
    announced = {code: m.weight for code, m in members(engine, EFFECTIVE).items()}
    with session_scope(engine) as session:
        applied = apply(session, APPLIED_ON, at(APPLIED_ON, 8), calendar=store[2])
    assert applied.weights == announced
    assert composite_weights(engine, EFFECTIVE) == announced
    served = client.get(url).json()
    assert served["status"] == "effective" and served["applied_at"] is not None
    assert {m["code"]: m["weight"] for m in served["members"]} == announced

    with pytest.raises(RebalanceError, match="already effective"):
        _announce(store, replace=True, reason="too late")


def test_the_weights_endpoint_refuses_bad_requests(store, database_url, tmp_path):
    client = TestClient(app_for(database_url, tmp_path))
    bad = client.get("/v1/indices/T/weights?effective=2026-13-01")
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "effective"
    missing = client.get("/v1/indices/T/weights")
    assert missing.status_code == 422 and missing.json()["detail"][0]["field"] == "effective"
    unknown = client.get("/v1/indices/NOPE/weights?effective=2026-01-01")
    assert unknown.status_code == 404 and "NOPE" in unknown.json()["detail"]
    early = client.get("/v1/indices/T/weights?effective=2024-12-31")
    assert early.status_code == 404
    assert early.json()["detail"] == (
        "index T has no weights in force on 2024-12-31: its first take effect on 2025-01-02"
    )
    with pytest.raises(InvalidInput) as nothing:
        _announce(store, replace=True, reason="nothing to replace")
    assert nothing.value.field == "replace"
    with pytest.raises(InvalidInput) as stray:
        _announce(store, reason="no --replace")
    assert stray.value.field == "reason"


def test_a_new_commodity_phases_in_over_two_rebalances(database_url, tmp_path):
    # DELTA joins the indices only in 2027, so it has no weight before the 2026 rebalance.
    # Traded values 400, 300, 200, 100 and production values 40, 30, 20, 10 make the
    # computed weights 0.4, 0.3, 0.2, 0.1. DELTA gets half of 0.1 at the first of its two
    # rebalances; the others share 0.95 pro rata to 0.4 : 0.3 : 0.2; at the second it has
    # its computed weight.
    production = {"ALPHA": 40.0, "BRAVO": 30.0, "CHARLIE": 20.0, "DELTA": 10.0}
    catalogue, methodology = world(
        "2026.1", production, joins={"DELTA": (0.1, dt.date(2027, 3, 1))}
    )
    assert methodology.rebalance.phase_in_rebalances == 2
    engine = make_engine(database_url)
    prepare_database(engine, catalogue, methodology)
    calendar = Calendar(methodology)
    traded = {"ALPHA": 400, "BRAVO": 300, "CHARLIE": 200, "DELTA": 100}
    add_trades(engine, _once(JUNE, traded) + _once(dt.date(2026, 6, 15), traded))
    store = (engine, catalogue, calendar)

    first = _announce(store)
    assert first.phase_in == {"DELTA": "1/2"}
    assert first.weights == pytest.approx(
        {
            "ALPHA": 0.4 * 0.95 / 0.9,
            "BRAVO": 0.3 * 0.95 / 0.9,
            "CHARLIE": 0.2 * 0.95 / 0.9,
            "DELTA": 0.05,
        },
        rel=REL,
    )
    with session_scope(engine) as session:
        apply(session, APPLIED_ON, at(APPLIED_ON, 8), calendar=calendar)
    assert composite_weights(engine, EFFECTIVE)["DELTA"] == pytest.approx(0.05, rel=REL)
    client = TestClient(app_for(database_url, tmp_path))
    served = client.get("/v1/indices/T/weights?effective=2026-03-02").json()
    delta = next(m for m in served["members"] if m["code"] == "DELTA")
    assert (delta["phase_in"], served["phase_in_rebalances"]) == ("1/2", 2)
    assert delta["computed_weight"] == pytest.approx(0.1, rel=REL)
    assert delta["weight"] == pytest.approx(0.05, rel=REL)

    second = _announce(store, now=at(dt.date(2026, 11, 2), 8), year=2027)
    assert second.phase_in == {}
    assert second.weights == pytest.approx(
        {"ALPHA": 0.4, "BRAVO": 0.3, "CHARLIE": 0.2, "DELTA": 0.1}, rel=REL
    )
    engine.dispose()


def test_the_announce_command(engine, database_url, catalogue):
    # The deployment's own catalogue and methodology; weights for next year from rebar and
    # hot-rolled coil trades in the middle of their data year.
    year = dt.date.today().year + 1
    calendar = Calendar(in_force())
    begin, end = calendar.data_year(year)
    day = calendar.next_publication_day(calendar.local_date(begin + (end - begin) / 2))
    rows = [
        (exchange, f"R{n}", "REBAR", at(day, 10 + n), 3500.0 + n, 100.0)
        for n, exchange in enumerate("XYX")
    ]
    add_trades(engine, rows)

    def run(*args: str):
        return CliRunner().invoke(
            cli,
            ["rebalance", "announce", "--year", str(year), *args, "--database-url", database_url],
        )

    announced = run()
    assert announced.exit_code == 0, announced.output
    assert "REBAR\t" in announced.stdout and "caps: commodity" in announced.stderr
    again = run()
    assert again.exit_code == 2
    assert "already announced" in again.stderr and "--replace --reason TEXT" in again.stderr
    assert run("--reason", "why").exit_code == 2
    no_reason = run("--replace")
    assert no_reason.exit_code == 2 and "--reason" in no_reason.stderr
    zero = CliRunner().invoke(
        cli, ["rebalance", "announce", "--year", "0", "--database-url", database_url]
    )
    assert zero.exit_code == 2 and "--year" in zero.stderr

    add_trades(
        engine, [(e, f"H{n}", "HRC", at(day, 10 + n), 3600.0, 200.0) for n, e in enumerate("XYX")]
    )
    replaced = run("--replace", "--reason", "hot-rolled coil trades arrived late")
    assert replaced.exit_code == 0, replaced.output
    assert "replaces the announcement" in replaced.stderr and "notices" in replaced.stderr
    with session_scope(engine) as session:
        acts = session.scalars(
            select(models.OperatorAct)
            .where(models.OperatorAct.action == "rebalance.announce")
            .order_by(models.OperatorAct.seq)
        ).all()
        assert [a.reason for a in acts] == [None, "hot-rolled coil trades arrived late"]
        assert acts[-1].details["replace"] is True


def test_the_scheduled_announcement_leaves_a_standing_one_as_announced(store):
    from publication.rebalance import announce_once

    engine, _, calendar = store

    def standing():
        with session_scope(engine) as session:
            found = session.scalars(
                select(models.WeightSet).where(models.WeightSet.effective_from == EFFECTIVE)
            ).all()
            return [(w.id, w.status, w.announced_at) for w in found]

    _announce(store)
    before = standing()
    add_trades(engine, _once(dt.date(2025, 6, 17), {"CHARLIE": 300}, "-late"))
    with session_scope(engine) as session:
        again = announce_once(session, 2026, ANNOUNCED + dt.timedelta(days=1), calendar=calendar)
    assert again.status == "announced" and "left as they are" in again.message
    assert len(before) == 1 and standing() == before

"""What an exchange reads about its own feed (health, rejected rows) and never about
another's; and the warning a push gets for trades too old to change anything published."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.feeds_support import client_for, exchange_key, push, role_key, trade

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
# Every row of A's batch by hand: row numbers count from 1, the header excluded.
A_ROWS = [
    trade("A-OK"),
    trade("A-NEGATIVE", price="-5"),
    trade("A-UNKNOWN", commodity="UNOBTAINIUM"),
]
B_ROWS = [trade("B-OK"), trade("B-SECRET-BAD", price="0"), trade("B-SECRET-NAN", price="NaN")]
READ_FORMATS = ("application/json", "text/csv", "application/vnd.apache.parquet", "*/*")


@pytest.fixture
def api(engine, database_url, tmp_path):
    with client_for(database_url, tmp_path / "archive") as client:
        client.engine = engine
        yield client


@pytest.fixture
def pushed(api):
    keys = {"A": exchange_key(api.engine, "EXA"), "B": exchange_key(api.engine, "EXB")}
    keys["admin"] = role_key(api.engine, "admin")
    assert push(api, keys["A"], A_ROWS).json()["rejected"] == 2
    assert push(api, keys["B"], B_ROWS, fmt="json").json()["rejected"] == 2
    return keys


def _get(api, path, key, accept="application/json", **params):
    return api.get(path, params=params, headers={"X-API-Key": key, "Accept": accept})


def test_an_exchange_sees_its_own_feed_health_only(api, pushed):
    for own, other in (("A", "B"), ("B", "A")):
        for accept in READ_FORMATS:
            answer = _get(api, "/v1/feeds/health", pushed[own], accept)
            assert answer.status_code == 200
            body = answer.json()
            assert [e["code"] for e in body["exchanges"]] == [f"EX{own}"]
            assert f"EX{other}" not in answer.text and f"{other}-" not in answer.text
            health = body["exchanges"][0]
            assert (health["rows"], health["accepted"], health["rejected"]) == (3, 1, 2)
    everyone = _get(api, "/v1/feeds/health", pushed["admin"]).json()
    assert [e["code"] for e in everyone["exchanges"]] == ["EXA", "EXB"]


def test_an_exchange_reads_its_rejected_rows_with_row_field_and_reason(api, pushed):
    answer = _get(api, "/v1/feeds/rejections", pushed["A"])
    assert answer.status_code == 200
    body = answer.json()
    today = dt.datetime.now(SHANGHAI).date()
    assert (body["date"], body["exchange"], body["batches"]) == (today.isoformat(), "EXA", 1)
    assert (body["rejected"], body["shown"], body["unrecorded"]) == (2, 2, [])
    assert [(r["row"], r["trade_id"], r["field"], r["code"]) for r in body["rejections"]] == [
        (2, "A-NEGATIVE", "price", "non_positive_price"),
        (3, "A-UNKNOWN", "commodity", "unknown_commodity"),
    ]
    assert all(r["message"] for r in body["rejections"])
    assert "B-SECRET" not in answer.text and "EXB" not in answer.text

    first = _get(api, "/v1/feeds/rejections", pushed["A"], limit=1).json()
    assert (first["rejected"], first["shown"]) == (2, 1)
    assert first["rejections"][0]["trade_id"] == "A-NEGATIVE"
    yesterday = (today - dt.timedelta(days=1)).isoformat()
    earlier = _get(api, "/v1/feeds/rejections", pushed["A"], date=yesterday).json()
    assert (earlier["rejected"], earlier["rejections"]) == (0, [])


def test_an_exchange_never_reads_another_exchanges_rejections(api, pushed):
    for accept in READ_FORMATS:
        named = _get(api, "/v1/feeds/rejections", pushed["A"], accept, exchange="EXB")
        assert named.status_code == 403
        assert "B-SECRET" not in named.text
        own = _get(api, "/v1/feeds/rejections", pushed["B"], accept)
        assert {r["trade_id"] for r in own.json()["rejections"]} == {
            "B-SECRET-BAD",
            "B-SECRET-NAN",
        }
        assert "A-" not in own.text
    for key, status in ((None, 401), (role_key(api.engine, "read"), 403)):
        headers = {"X-API-Key": key} if key else {}
        assert api.get("/v1/feeds/rejections", headers=headers).status_code == status
        assert api.get("/v1/feeds/health", headers=headers).status_code == status


def test_an_operator_reads_every_exchanges_rejections_or_the_one_it_names(api, pushed):
    everyone = _get(api, "/v1/feeds/rejections", pushed["admin"]).json()
    assert (everyone["exchange"], everyone["batches"], everyone["rejected"]) == (None, 2, 4)
    assert [(r["exchange"], r["trade_id"]) for r in everyone["rejections"]] == [
        ("EXA", "A-NEGATIVE"),
        ("EXA", "A-UNKNOWN"),
        ("EXB", "B-SECRET-BAD"),
        ("EXB", "B-SECRET-NAN"),
    ]
    assert _get(api, "/v1/feeds/rejections", pushed["admin"], exchange="NOPE").status_code == 404
    body = _get(api, "/v1/feeds/rejections", pushed["admin"], exchange="EXB").json()
    assert body["exchange"] == "EXB" and body["rejected"] == 2
    too_many = _get(api, "/v1/feeds/rejections", pushed["A"], limit=0)
    assert too_many.status_code == 422 and "limit" in too_many.text


def _days_back(count: int) -> dt.date:
    """The ``count``-th weekday counting back from today (today included if a weekday): a
    lower bound on where a window of ``count`` publication days starts (holidays only push
    it earlier)."""
    day = dt.datetime.now(SHANGHAI).date()
    seen = 0
    while True:
        if day.weekday() < 5:
            seen += 1
            if seen == count:
                return day
        day -= dt.timedelta(days=1)


def test_a_trade_older_than_the_correction_window_is_accepted_with_a_warning(api):
    key = exchange_key(api.engine, "EXA")
    recent = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    old = [
        trade(f"OLD-{n:02d}", traded_at=f"2025-03-{3 + n % 5:02d}T10:00:00+08:00")
        for n in range(25)
    ]
    answer = push(api, key, [*old, trade("NEW", traded_at=recent)], fmt="json")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (26, 0)
    [warning] = body["warnings"]
    assert warning["code"] == "after_correction_window"
    assert warning["count"] == 25 and warning["window_days"] == 5
    assert warning["trade_ids"] == [f"OLD-{n:02d}" for n in range(20)]  # the first 20 named
    start = dt.date.fromisoformat(warning["window_start"])
    assert dt.date(2025, 3, 7) < start <= _days_back(5)
    assert str(start) in warning["message"] and "change nothing published" in warning["message"]

    # re-sent, they are duplicates: nothing stored, nothing to warn about
    again = push(api, key, old[:3], fmt="csv").json()
    assert (again["duplicates"], again["warnings"]) == (3, [])
    # one old trade among duplicates: only the stored one is named
    mixed = push(api, key, [*old[:2], trade("OLD-LATE")], fmt="ndjson").json()
    assert [(w["count"], w["trade_ids"]) for w in mixed["warnings"]] == [(1, ["OLD-LATE"])]
    fresh = push(api, key, [trade("NEW-2", traded_at=recent)]).json()
    assert fresh["warnings"] == []


def test_rejected_rows_of_a_batch_without_a_record_come_back_from_the_audit(
    api, pushed, database_url, catalogue, tmp_path
):
    """A batch received before its rows were kept shows its counts only, until `bcpi audit
    verify` replays the archive: the replay records them, and leaves kept records as
    they are."""
    from audit.stored_trades import rebuild_trades
    from core.settings import Settings

    archive = tmp_path / "archive"
    records = sorted((tmp_path / "archive-rejections").rglob("*.ndjson"))
    assert len(records) == 2  # one per batch with rejected rows: A's and B's
    kept = {path: path.stat().st_mtime_ns for path in records}
    own = [p for p in records if "B-SECRET" not in p.read_text()]
    own[0].unlink()
    body = _get(api, "/v1/feeds/rejections", pushed["A"]).json()
    assert (body["rejected"], body["shown"], body["rejections"]) == (2, 0, [])
    [unrecorded] = body["unrecorded"]
    assert unrecorded["rejections_by_reason"] == {"non_positive_price": 1, "unknown_commodity": 1}

    settings = Settings(database_url=database_url, archive_dir=archive)
    report = rebuild_trades(api.engine, archive_dir=archive, catalogue=catalogue, settings=settings)
    assert not report.differences
    body = _get(api, "/v1/feeds/rejections", pushed["A"]).json()
    assert [r["trade_id"] for r in body["rejections"]] == ["A-NEGATIVE", "A-UNKNOWN"]
    assert body["unrecorded"] == []
    others = [p for p in records if p not in own]
    assert {p: p.stat().st_mtime_ns for p in others} == {p: kept[p] for p in others}

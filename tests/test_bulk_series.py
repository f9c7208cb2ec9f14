"""Several indices in long form (``GET /v1/series``): every format, ``*``, unknown codes,
``as_of`` across a restatement and a withdrawal, ranges and ``limit``.

Expected rows come from the database by plain SQL (the vintages standing at an instant:
published by then, not yet superseded, not withdrawn) and from each index's own series
endpoint."""

from __future__ import annotations

import datetime as dt
import io

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from core.methodology import in_force
from core.settings import Settings
from publication.vintage import Restating, withdraw_vintages
from store import models
from store.db import session_scope
from tests.publication_data import T0, level, publish_index, weekdays

DAYS = weekdays(dt.date(2025, 3, 3), 30)
CODES = ("BCPI", "BCPI-AGR", "COTTON")
RESTATED_AT = T0 + dt.timedelta(hours=5)
WITHDRAWN_AT = T0 + dt.timedelta(days=1)
RESTATED_DAY, WITHDRAWN_DAY = DAYS[4], DAYS[9]
COLUMNS = ["date", "code", "value", "status", "vintage", "flags"]


def _value(code: str, day: dt.date) -> float:
    return level(day) * (1 + CODES.index(code) / 10)


@pytest.fixture
def client(engine, database_url, tmp_path):
    for code in CODES:
        publish_index(engine, code, {day: _value(code, day) for day in DAYS}, now=T0)
    publish_index(engine, "BCPI", {RESTATED_DAY: 1234.5}, now=RESTATED_AT)
    with session_scope(engine) as session:
        withdrawn = withdraw_vintages(
            session,
            models.IndexValue,
            "index_id",
            [WITHDRAWN_DAY],
            now=WITHDRAWN_AT,
            rules=Restating(in_force().version),
        )
    assert withdrawn == len(CODES)
    settings = Settings(database_url=database_url, archive_dir=tmp_path / "archive")
    with TestClient(create_app(settings)) as client:
        yield client


def _instant(value) -> dt.datetime | None:
    """A stored timestamp as a UTC instant (SQLite returns text of the UTC wall time)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _standing(engine, code: str, as_of: dt.datetime | None = None, start=None, end=None):
    """The rows of ``code`` that stood at ``as_of`` (now without it), read by plain SQL:
    published by then, not superseded by then, not withdrawn."""
    sql = text(
        "SELECT v.date, v.value, v.status, v.vintage, v.flags, v.published_at, v.superseded_at"
        " FROM index_values v JOIN index_definitions d ON d.id = v.index_id"
        " WHERE d.code = :code ORDER BY v.date, v.vintage"
    )
    with session_scope(engine) as session:
        rows = session.execute(sql, {"code": code}).all()
    out = []
    for day, value, status, vintage, flags, published, superseded in rows:
        day = day if isinstance(day, dt.date) else dt.date.fromisoformat(day)
        published, superseded = _instant(published), _instant(superseded)
        if as_of is None:
            stood = superseded is None
        else:
            stood = published <= as_of and (superseded is None or superseded > as_of)
        if not stood or status == "withdrawn":
            continue
        if (start and day < start) or (end and day > end):
            continue
        out.append((day.isoformat(), code, value, status, vintage, (flags or "").split()))
    return out


def _rows(body: dict) -> list[tuple]:
    return [tuple(point[c] for c in COLUMNS) for point in body["points"]]


def _frame_rows(frame: pl.DataFrame) -> list[tuple]:
    if frame.schema["date"] == pl.Date:
        frame = frame.with_columns(pl.col("date").dt.to_string("%Y-%m-%d"))
    out = []
    for row in frame.select(COLUMNS).iter_rows():
        flags = row[-1]
        if isinstance(flags, str) or flags is None:
            flags = (flags or "").split()
        out.append((*row[:-1], list(flags)))
    return out


def test_json_is_every_code_in_long_form_as_stored(client, engine):
    body = client.get("/v1/series", params={"codes": "BCPI,BCPI-AGR"}).json()
    assert body["codes"] == ["BCPI", "BCPI-AGR"] and body["as_of"] is None
    expected = _standing(engine, "BCPI") + _standing(engine, "BCPI-AGR")
    assert _rows(body) == expected
    # The restated value with its second vintage; the withdrawn date is gone from both.
    assert (RESTATED_DAY.isoformat(), "BCPI", 1234.5, "restated", 2) in [r[:5] for r in expected]
    assert WITHDRAWN_DAY.isoformat() not in {row[0] for row in expected}
    assert len(expected) == 2 * (len(DAYS) - 1)


def test_each_code_matches_its_own_series(client):
    body = client.get("/v1/series", params={"codes": ",".join(CODES)}).json()
    for code in CODES:
        single = client.get(f"/v1/indices/{code}/series").json()["points"]
        mine = [p for p in body["points"] if p["code"] == code]
        assert [(p["date"], p["value"], p["status"], p["flags"]) for p in mine] == [
            (p["date"], p["value"], p["status"], p["flags"]) for p in single
        ]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "arrow"])
def test_every_format_carries_the_same_rows(client, engine, fmt):
    answer = client.get("/v1/series", params={"codes": "COTTON,BCPI", "format": fmt})
    assert answer.status_code == 200, answer.text
    data = io.BytesIO(answer.content)
    if fmt == "csv":
        assert answer.headers["content-type"].startswith("text/csv")
        frame = pl.read_csv(data, schema_overrides={"flags": pl.String})
    elif fmt == "parquet":
        frame = pl.from_arrow(pq.read_table(data))
    else:
        frame = pl.from_arrow(pa.ipc.open_stream(data).read_all())
    assert frame.columns == COLUMNS
    assert _frame_rows(frame) == _standing(engine, "COTTON") + _standing(engine, "BCPI")


def test_accept_header_chooses_the_format(client):
    answer = client.get("/v1/series?codes=BCPI", headers={"Accept": "text/csv"})
    assert answer.status_code == 200
    assert answer.text.splitlines()[0] == ",".join(COLUMNS)


def test_star_is_every_index_by_code(client, engine):
    body = client.get("/v1/series", params={"codes": "*"}).json()
    with session_scope(engine) as session:
        every = list(session.scalars(text("SELECT code FROM index_definitions ORDER BY code")))
    assert body["codes"] == every
    assert _rows(body) == [row for code in every for row in _standing(engine, code)]


def test_unknown_codes_are_404_naming_them(client):
    one = client.get("/v1/series", params={"codes": "BCPI,NOPE"})
    assert one.status_code == 404
    assert one.json()["error"] == "UnknownIndex" and "'NOPE'" in one.json()["detail"]
    two = client.get("/v1/series", params={"codes": "NOPE,BCPI,ALSO"})
    assert two.status_code == 404
    assert "'NOPE'" in two.json()["detail"] and "'ALSO'" in two.json()["detail"]


@pytest.mark.parametrize(
    "params",
    [{}, {"codes": ""}, {"codes": " , "}, {"codes": "*,BCPI"}, {"codes": "X" * 5000}],
)
def test_missing_or_malformed_codes_are_422_naming_codes(client, params):
    answer = client.get("/v1/series", params=params)
    assert answer.status_code == 422, answer.text
    assert [problem["field"] for problem in answer.json()["detail"]] == ["codes"]


def test_as_of_answers_what_stood_then(client, engine):
    for as_of in (
        T0 - dt.timedelta(seconds=1),
        T0,
        RESTATED_AT - dt.timedelta(microseconds=1),
        RESTATED_AT,
        WITHDRAWN_AT - dt.timedelta(seconds=1),
        WITHDRAWN_AT,
    ):
        body = client.get(
            "/v1/series", params={"codes": "BCPI,COTTON", "as_of": as_of.isoformat()}
        ).json()
        assert body["as_of"] == as_of.isoformat()
        expected = _standing(engine, "BCPI", as_of) + _standing(engine, "COTTON", as_of)
        assert _rows(body) == expected, as_of
        for code in ("BCPI", "COTTON"):
            single = client.get(
                f"/v1/indices/{code}/series", params={"as_of": as_of.isoformat()}
            ).json()["points"]
            assert [(p["date"], p["value"]) for p in body["points"] if p["code"] == code] == [
                (p["date"], p["value"]) for p in single
            ]
    before = client.get(
        "/v1/series", params={"codes": "BCPI", "as_of": RESTATED_AT - dt.timedelta(seconds=1)}
    ).json()["points"]
    old = next(p for p in before if p["date"] == RESTATED_DAY.isoformat())
    assert (old["value"], old["status"], old["vintage"]) == (
        _value("BCPI", RESTATED_DAY),
        "final",
        1,
    )
    assert WITHDRAWN_DAY.isoformat() in {p["date"] for p in before}


def test_range_limit_and_order_of_codes(client, engine):
    start, end = DAYS[3], DAYS[12]
    body = client.get(
        "/v1/series",
        params={"codes": "COTTON,BCPI,COTTON", "start": start.isoformat(), "end": end.isoformat()},
    ).json()
    assert body["codes"] == ["COTTON", "BCPI"]
    assert _rows(body) == _standing(engine, "COTTON", start=start, end=end) + _standing(
        engine, "BCPI", start=start, end=end
    )
    whole = _standing(engine, "COTTON") + _standing(engine, "BCPI")
    for limit in (1, len(DAYS) - 1, len(DAYS) + 2, 10 * len(DAYS)):
        limited = client.get("/v1/series", params={"codes": "COTTON,BCPI", "limit": limit})
        assert _rows(limited.json()) == whole[:limit], limit


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2025-03-10", "end": "2025-03-01"}, None),
        ({"limit": 0}, "limit"),
        ({"limit": 100_000_001}, "limit"),
        ({"as_of": "9999-01-01T00:00:00Z"}, "as_of"),
        ({"format": "xlsx"}, "format"),
    ],
)
def test_the_single_series_limits_hold(client, params, field):
    answer = client.get("/v1/series", params={"codes": "BCPI", **params})
    assert answer.status_code == 422, answer.text
    if field is not None:
        assert field in answer.text


def test_a_read_key_is_needed_where_the_settings_say_so(engine, database_url, tmp_path):
    settings = Settings(
        database_url=database_url, archive_dir=tmp_path / "archive", require_read_key=True
    )
    with TestClient(create_app(settings)) as client:
        answer = client.get("/v1/series", params={"codes": "BCPI"})
    assert answer.status_code == 401

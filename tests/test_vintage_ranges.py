"""Every vintage of a date range with ALFRED's real-time periods, in every format, and the
latest value of a status.

The history: provisional values at T0, the fixing's final values at T1, two restatements
at T2, a withdrawal at T3 and a provisional value of a newer day at T4. Expected rows are
read from the database by plain SQL; the real-time periods are checked against the single
series answered ``as_of`` each instant."""

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

DAYS = weekdays(dt.date(2025, 3, 3), 10)
NEWER = weekdays(DAYS[-1] + dt.timedelta(days=1), 1)[0]
T1, T2 = T0 + dt.timedelta(hours=6), T0 + dt.timedelta(days=1)
T3, T4 = T0 + dt.timedelta(days=2), T0 + dt.timedelta(days=3)
RESTATED = {DAYS[2]: 2000.0, DAYS[-1]: 2100.0}
WITHDRAWN = DAYS[5]
OPEN_END = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
COLUMNS = [
    "date",
    "vintage",
    "value",
    "status",
    "realtime_start",
    "realtime_end",
    "methodology_version",
    "inputs_hash",
    "flags",
]


@pytest.fixture
def client(engine, database_url, tmp_path):
    publish_index(engine, "BCPI", {d: level(d) for d in DAYS}, now=T0, status="provisional")
    publish_index(engine, "BCPI", {d: level(d) + 1 for d in DAYS}, now=T1)
    publish_index(engine, "BCPI", RESTATED, now=T2)
    with session_scope(engine) as session:
        gone = withdraw_vintages(
            session,
            models.IndexValue,
            "index_id",
            [WITHDRAWN],
            now=T3,
            rules=Restating(in_force().version),
        )
    assert gone >= 1
    publish_index(engine, "BCPI", {NEWER: 999.0}, now=T4, status="provisional")
    settings = Settings(database_url=database_url, archive_dir=tmp_path / "archive")
    with TestClient(create_app(settings)) as client:
        yield client


def _instant(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _stored(engine, as_of=None, start=None, end=None) -> list[tuple]:
    """Every vintage of BCPI published by ``as_of``, with ALFRED's period as it was known
    then: a supersession after ``as_of`` had not happened."""
    sql = text(
        "SELECT v.date, v.vintage, v.value, v.status, v.published_at, v.superseded_at,"
        " v.methodology_version, v.inputs_hash, v.flags"
        " FROM index_values v JOIN index_definitions d ON d.id = v.index_id"
        " WHERE d.code = 'BCPI' ORDER BY v.date, v.vintage"
    )
    with session_scope(engine) as session:
        rows = session.execute(sql).all()
    out = []
    for day, vintage, value, status, published, superseded, version, digest, flags in rows:
        day = day if isinstance(day, dt.date) else dt.date.fromisoformat(day)
        published, superseded = _instant(published), _instant(superseded)
        if as_of is not None and published > as_of:
            continue
        if (start and day < start) or (end and day > end):
            continue
        if superseded is None or (as_of is not None and superseded > as_of):
            superseded = OPEN_END
        words = (flags or "").split()
        out.append((day, vintage, value, status, published, superseded, version, digest, words))
    return out


def _json_rows(body: dict) -> list[tuple]:
    out = []
    for p in body["points"]:
        out.append(
            (
                dt.date.fromisoformat(p["date"]),
                p["vintage"],
                p["value"],
                p["status"],
                _instant(p["realtime_start"]),
                _instant(p["realtime_end"]),
                p["methodology_version"],
                p["inputs_hash"],
                p["flags"],
            )
        )
    return out


def _range(client, **params) -> dict:
    answer = client.get("/v1/indices/BCPI/vintages", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_range_lists_every_vintage_with_its_real_time_period(client, engine):
    body = _range(client, start=DAYS[0].isoformat(), end=NEWER.isoformat())
    assert (body["code"], body["start"], body["end"], body["as_of"]) == (
        "BCPI",
        DAYS[0].isoformat(),
        NEWER.isoformat(),
        None,
    )
    assert _json_rows(body) == _stored(engine)
    # By hand: a restated day's three vintages, and the withdrawn day's last one.
    restated = [r[1:6] for r in _json_rows(body) if r[0] == DAYS[2]]
    assert restated == [
        (1, level(DAYS[2]), "provisional", T0, T1),
        (2, level(DAYS[2]) + 1, "final", T1, T2),
        (3, 2000.0, "restated", T2, OPEN_END),
    ]
    withdrawn = [r[1:6] for r in _json_rows(body) if r[0] == WITHDRAWN]
    assert withdrawn[-1] == (3, None, "withdrawn", T3, OPEN_END)
    assert '"realtime_end":"9999-12-31T00:00:00' in client.get(
        "/v1/indices/BCPI/vintages", params={"start": NEWER.isoformat()}
    ).text.replace(" ", "")


def test_open_ranges(client, engine):
    since = _range(client, start=DAYS[7].isoformat())
    assert _json_rows(since) == _stored(engine, start=DAYS[7])
    until = _range(client, end=DAYS[1].isoformat())
    assert _json_rows(until) == _stored(engine, end=DAYS[1])


def _table(answer, fmt: str) -> list[tuple]:
    data = io.BytesIO(answer.content)
    if fmt == "csv":
        text_columns = ("flags", "methodology_version", "inputs_hash")
        overrides = {name: pl.String for name in text_columns} | {"value": pl.Float64}
        frame = pl.read_csv(data, schema_overrides=overrides)
    elif fmt == "parquet":
        frame = pl.from_arrow(pq.read_table(data))
    else:
        frame = pl.from_arrow(pa.ipc.open_stream(data).read_all())
    assert frame.columns == COLUMNS
    out = []
    for row in frame.iter_rows(named=True):
        flags = row["flags"]
        flags = (flags or "").split() if isinstance(flags, str) or flags is None else list(flags)
        day = row["date"]
        out.append(
            (
                day if isinstance(day, dt.date) else dt.date.fromisoformat(day),
                row["vintage"],
                row["value"],
                row["status"],
                _instant(row["realtime_start"]),
                _instant(row["realtime_end"]),
                row["methodology_version"],
                row["inputs_hash"],
                flags,
            )
        )
    return out


@pytest.mark.parametrize("fmt", ["csv", "parquet", "arrow"])
def test_every_format_carries_the_same_rows(client, engine, fmt):
    params = {"start": DAYS[1].isoformat(), "end": DAYS[6].isoformat(), "format": fmt}
    answer = client.get("/v1/indices/BCPI/vintages", params=params)
    assert answer.status_code == 200, answer.text
    assert _table(answer, fmt) == _stored(engine, start=DAYS[1], end=DAYS[6])


def test_as_of_shows_the_periods_as_they_were_known(client, engine):
    between = T1 + dt.timedelta(hours=1)
    body = _range(client, start=DAYS[0].isoformat(), as_of=between.isoformat())
    assert _json_rows(body) == _stored(engine, as_of=between, start=DAYS[0])
    restated = [r[1:6] for r in _json_rows(body) if r[0] == DAYS[2]]
    assert restated == [
        (1, level(DAYS[2]), "provisional", T0, T1),
        (2, level(DAYS[2]) + 1, "final", T1, OPEN_END),
    ]


@pytest.mark.parametrize(
    "moment",
    [T0, T1 - dt.timedelta(microseconds=1), T1, T2 + dt.timedelta(minutes=1), T3, T4],
)
def test_the_periods_agree_with_the_series_as_of_each_instant(client, moment):
    """ALFRED's rule: at instant t a date's value is the vintage with realtime_start ≤ t <
    realtime_end (none if that vintage is withdrawn)."""
    rows = _json_rows(_range(client, start=DAYS[0].isoformat()))
    standing = [
        (r[0].isoformat(), r[2], r[3])
        for r in rows
        if r[4] <= moment < r[5] and r[3] != "withdrawn"
    ]
    series = client.get("/v1/indices/BCPI/series", params={"as_of": moment.isoformat()}).json()
    assert standing == [(p["date"], p["value"], p["status"]) for p in series["points"]]


def test_the_date_form_is_unchanged_and_has_every_format(client, engine):
    body = _range(client, date=DAYS[2].isoformat())
    assert body["date"] == DAYS[2].isoformat()
    assert [
        (v["vintage"], v["status"], _instant(v["published_at"]), _instant(v["superseded_at"]))
        for v in body["vintages"]
    ] == [(1, "provisional", T0, T1), (2, "final", T1, T2), (3, "restated", T2, None)]
    answer = client.get(
        "/v1/indices/BCPI/vintages", params={"date": DAYS[2].isoformat(), "format": "csv"}
    )
    assert _table(answer, "csv") == _stored(engine, start=DAYS[2], end=DAYS[2])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"date": "2025-03-05", "start": "2025-03-03"}, "date"),
        ({"date": "2025-03-05", "end": "2025-03-10"}, "date"),
        ({}, "date"),
        ({"start": "2025-03-10", "end": "2025-03-03"}, None),
        ({"start": "2025-03-03", "as_of": "0001-01-01T00:00:00Z"}, "as_of"),
        ({"start": "2025-03-03", "format": "xml"}, "format"),
    ],
)
def test_conflicting_or_missing_dates_are_422(client, params, field):
    answer = client.get("/v1/indices/BCPI/vintages", params=params)
    assert answer.status_code == 422, answer.text
    if field is not None:
        assert field in answer.text
    if field == "date":
        assert [p["field"] for p in answer.json()["detail"]] == ["date"]
        message = answer.json()["detail"][0]["message"]
        assert "start" in message and "end" in message


def test_unknown_index_is_404(client):
    answer = client.get("/v1/indices/NOPE/vintages", params={"start": "2025-03-03"})
    assert answer.status_code == 404


# -- the latest value of a status ----------------------------------------------------------


def _latest(client, **params):
    return client.get("/v1/indices/BCPI/latest", params=params)


def test_latest_final_passes_over_a_newer_provisional_value(client):
    newest = _latest(client).json()
    assert (newest["date"], newest["status"], newest["value"]) == (
        NEWER.isoformat(),
        "provisional",
        999.0,
    )
    final = _latest(client, status="final").json()
    # The newest fixed value: the last day's final value, restated at T2.
    assert (final["date"], final["status"], final["value"], final["vintage"]) == (
        DAYS[-1].isoformat(),
        "restated",
        RESTATED[DAYS[-1]],
        3,
    )
    provisional = _latest(client, status="provisional").json()
    assert (provisional["date"], provisional["value"]) == (NEWER.isoformat(), 999.0)
    restated = _latest(client, status="restated").json()
    assert restated["date"] == DAYS[-1].isoformat()


def test_latest_of_a_status_as_of_an_instant(client):
    before_fixing = T1 - dt.timedelta(seconds=1)
    missing = _latest(client, status="final", as_of=before_fixing.isoformat())
    assert missing.status_code == 404 and "final" in missing.json()["detail"]
    after_fixing = _latest(client, status="final", as_of=T1.isoformat()).json()
    assert (after_fixing["date"], after_fixing["status"], after_fixing["value"]) == (
        DAYS[-1].isoformat(),
        "final",
        level(DAYS[-1]) + 1,
    )
    provisional = _latest(client, status="provisional", as_of=before_fixing.isoformat()).json()
    assert (provisional["date"], provisional["value"]) == (DAYS[-1].isoformat(), level(DAYS[-1]))


@pytest.mark.parametrize("status", ["withdrawn", "FINAL", "fixed", ""])
def test_an_unknown_status_is_422_naming_the_allowed_ones(client, status):
    answer = _latest(client, status=status)
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["field"] == "status"
    for allowed in ("provisional", "final", "restated"):
        assert allowed in problem["message"]

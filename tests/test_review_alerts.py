"""A day-on-day move beyond methodology 2026.1's review threshold (10%) flags the value
``review`` and raises an alert; the value is published all the same."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.methodology import load_methodology
from core.settings import Settings
from tests.publication_data import T0, publish_index, weekdays

DAYS = weekdays(dt.date(2026, 12, 1), 5)
# Moves: +5%, +15% (beyond 10%), -9.9%... and a -20% fall: flagged days are 2 and 4.
VALUES = dict(zip(DAYS, [1000.0, 1050.0, 1207.5, 1100.0, 880.0], strict=True))
FLAGGED = {DAYS[2]: 1207.5 / 1050.0 - 1, DAYS[4]: 880.0 / 1100.0 - 1}


def test_the_threshold_is_the_published_one():
    assert load_methodology("2026.1").publication.review_threshold == 0.10
    assert load_methodology("2025.2").publication.review_threshold is None


@pytest.fixture
def client(engine, database_url):
    publish_index(engine, "BCPI", VALUES, now=T0, version="2026.1")
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client


def test_flags_and_alerts(client):
    points = client.get("/v1/indices/BCPI/series", params={"start": DAYS[0].isoformat()}).json()
    by_day = {p["date"]: p for p in points["points"]}
    for day, value in VALUES.items():
        point = by_day[day.isoformat()]
        assert point["value"] == value  # published, not held back
        assert point["flags"] == (["review"] if day in FLAGGED else [])

    latest = client.get("/v1/indices/BCPI/latest").json()
    assert latest["date"] == DAYS[4].isoformat() and latest["flags"] == ["review"]
    vintages = client.get("/v1/indices/BCPI/vintages", params={"date": DAYS[2].isoformat()})
    assert vintages.json()["vintages"][0]["flags"] == ["review"]

    alerts = client.get("/v1/alerts", params={"since": T0.isoformat()}).json()["alerts"]
    assert [(a["code"], a["date"]) for a in alerts] == [
        ("BCPI", d.isoformat()) for d in sorted(FLAGGED)
    ]
    for alert in alerts:
        day = dt.date.fromisoformat(alert["date"])
        assert alert["kind"] == "index" and alert["threshold"] == 0.10
        assert alert["move"] == pytest.approx(FLAGGED[day], rel=1e-12)
        assert alert["value"] == VALUES[day]
        assert alert["methodology_version"] == "2026.1"
    later = T0 + dt.timedelta(seconds=1)
    assert client.get("/v1/alerts", params={"since": later.isoformat()}).json()["alerts"] == []
    bad = client.get("/v1/alerts", params={"since": "yesterday"})
    assert bad.status_code == 422 and "since" in bad.text

    csv = client.get("/v1/indices/BCPI/series", params={"format": "csv"}).text
    frame = pl.read_csv(csv.encode())
    assert frame.filter(pl.col("flags") == "review").height == 2


def test_no_flag_before_the_version_that_states_a_threshold(engine, database_url):
    publish_index(engine, "BCPI", VALUES, now=T0, version="2025.2")
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        points = client.get("/v1/indices/BCPI/series").json()["points"]
        assert all(p["flags"] == [] for p in points)
        assert client.get("/v1/alerts").json()["alerts"] == []

"""A new deployment publishes from its first day of data.

A fresh SQLite deployment (the catalogue's base date is 2 January 2025) receives a week of
national carbon allowance (CEA) trades from three exchanges, ending yesterday. ``bcpi
compute`` for that week publishes the CEA commodity index, at its base value on the first
day, with its explanation; indices with a constituent that was never assessed publish
nothing yet.
"""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from core.calendar import Calendar
from core.methodology import in_force
from core.settings import Settings, get_settings
from store.db import make_engine
from store.migrate import upgrade
from tests.feeds_support import exchange_key, push, trade

BASE_VALUE = 1000.0


def _week() -> list[dt.date]:
    """The five publication days ending yesterday."""
    calendar = Calendar(in_force())
    last = calendar.previous_publication_day(calendar.today())
    first = calendar.publication_days_before(last, 5)
    return calendar.publication_days(first, last)


def test_a_week_of_carbon_trades_publishes_the_carbon_index_from_its_first_day(
    tmp_path, monkeypatch
):
    from cli.main import app as cli

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    settings = Settings(database_url=url, archive_dir=tmp_path / "archive")
    engine = make_engine(url)
    upgrade(engine)
    week = _week()
    with TestClient(create_app(settings)) as client:
        for n, exchange in enumerate(("BJCX", "CBEEX", "BSTX")):
            key = exchange_key(engine, exchange)
            rows = [
                trade(
                    f"{exchange}-{day}-{hour}",
                    commodity="CEA",
                    traded_at=f"{day}T{hour}:00:00+08:00",
                    price=str(70 + 0.5 * i + n),
                    quantity="5000",
                    unit="tCO2e",
                )
                for i, day in enumerate(week)
                for hour in (10, 11)
            ]
            answer = push(client, key, rows)
            assert answer.status_code == 200 and answer.json()["accepted"] == len(rows)
    engine.dispose()

    monkeypatch.setenv("BCPI_DATABASE_URL", url)
    monkeypatch.setenv("BCPI_ARCHIVE_DIR", str(tmp_path / "archive"))
    get_settings.cache_clear()
    try:
        done = CliRunner().invoke(cli, ["compute", "--start", str(week[0]), "--end", str(week[-1])])
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 0, done.output

    with TestClient(create_app(settings)) as client:
        series = client.get("/v1/indices/CEA/series").json()["points"]
        listed = {i["code"]: i for i in client.get("/v1/indices").json()}
        explained = client.get("/v1/indices/CEA/explain", params={"date": str(week[0])})
        later = client.get("/v1/indices/CEA/explain", params={"date": str(week[-1])}).json()
        composite = client.get("/v1/indices/BCPI/series").json()["points"]
    assert [p["date"] for p in series] == [str(d) for d in week]
    assert series[0]["value"] == BASE_VALUE
    # Every exchange's prices rise by 0.5 a day: each day's VWAP is the first day's + 0.5 i.
    first_vwap = 71.0
    for i, point in enumerate(series):
        assert point["value"] == pytest.approx((first_vwap + 0.5 * i) / first_vwap * BASE_VALUE)
    assert listed["CEA"]["base_date"] == str(week[0]) and listed["CEA"]["started"] is True
    assert listed["BCPI"]["started"] is False and composite == []
    assert explained.status_code == 200
    answer = explained.json()
    assert answer["base_date"] == str(week[0]) and answer["value"] == BASE_VALUE
    (member,) = later["constituents"]
    assert member["base"] == {"date": str(week[0]), "price": first_vwap}
    assert member["assessment"]["price"] == first_vwap + 0.5 * (len(week) - 1)

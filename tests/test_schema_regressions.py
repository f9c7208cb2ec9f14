"""Regressions found by the schema fuzzing: each once a 5xx or an answer the OpenAPI
document did not describe."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from store.bootstrap import prepare_database
from store.db import make_engine
from store.migrate import current_revisions, head_revisions
from tests.support_api import app_for, issue_keys


@pytest.fixture
def client(database_url, catalogue, tmp_path):
    engine = make_engine(database_url)
    prepare_database(engine, catalogue)
    keys = issue_keys(engine)
    with TestClient(app_for(database_url, tmp_path)) as client:
        client.keys = keys
        client.engine = engine
        yield client
    engine.dispose()


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_feed_health_of_a_day_at_the_calendars_ends_is_a_client_error(client, day):
    # Once OverflowError: the day's bounds in UTC fall outside datetime's range.
    answer = client.get(
        "/v1/feeds/health", params={"date": day}, headers={"X-API-Key": client.keys.admin}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "InvalidRange"


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:59"])
def test_job_runs_since_an_instant_no_database_stores_is_a_client_error(client, since):
    # Once a 500: the driver could not bind a year-1 instant shifted by its offset.
    answer = client.get(
        "/v1/ops/jobs", params={"since": since}, headers={"X-API-Key": client.keys.admin}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "InvalidRange"


def test_ready_once_every_migration_is_applied(client):
    # A migration with ``depends_on`` hides that head from alembic_version; /readyz then
    # compared the two and answered 503 for a database at the latest schema.
    assert current_revisions(client.engine) == head_revisions()
    migrations = client.get("/readyz").json()["checks"]["migrations"]
    assert migrations["ok"] is True, migrations


def test_documented_errors_are_the_answers_given(client):
    document = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    answer = client.get("/v1/indices/BCPI/series", params={"limit": "zero"})
    assert answer.status_code == 422
    body = answer.json()
    assert set(body) == {"error", "detail"}
    assert body["detail"][0]["field"] == "limit"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith("4"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorAnswer"}, (path, status)
            if path.startswith(("/v1/trades", "/v1/feeds", "/v1/ops")):
                assert {"401", "403"} <= set(operation["responses"]), (method, path)
                assert {} not in operation["security"], (method, path)


def test_the_calendar_answers_this_year_by_default(client):
    # Found by the schema fuzzing: GET /v1/calendar without ``year`` was a 500 (the
    # default handed the calendar today's date where it takes a year).
    this_year = dt.datetime.now(ZoneInfo("Asia/Shanghai")).year
    answer = client.get("/v1/calendar", headers={"X-API-Key": client.keys.read})
    assert answer.status_code == 200, answer.text
    explicit = client.get(
        "/v1/calendar", params={"year": this_year}, headers={"X-API-Key": client.keys.read}
    )
    assert answer.json()["year"] == this_year
    assert answer.json() == explicit.json()

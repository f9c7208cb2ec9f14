"""Operations endpoints: /readyz, /metrics, /v1/ops/jobs; JSON logs."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from core.logging import JsonFormatter
from core.settings import Settings
from ingest.files import ingest_file
from publication.fixing import compute
from scheduler.jobs import JOBS
from scheduler.runner import Runner
from store.db import make_engine, session_scope
from store.reference import create_key
from tests.scheduler_support import BEIJING, ingest_days

BASE = dt.date(2025, 1, 2)
FIXING = next(job for job in JOBS if job.name == "fixing")
FRIDAY_EVENING = dt.datetime(2025, 1, 3, 17, 0, tzinfo=BEIJING)


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@pytest.fixture
def ops(database_url, catalogue, tmp_path):
    engine = make_engine(database_url)
    settings = Settings(database_url=database_url)
    with TestClient(create_app(settings)) as client:  # migrates
        with session_scope(engine) as session:
            admin, reader = create_key(session, "admin"), create_key(session, "read")
        yield client, engine, settings, admin, reader
    engine.dispose()


def test_readyz_reports_each_check_and_turns_ready_once_the_fixing_is_out(ops, catalogue, tmp_path):
    client, engine, settings, _, _ = ops
    answer = client.get("/readyz")
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["database"]["ok"] and checks["migrations"]["ok"]
    assert checks["migrations"]["current"] == checks["migrations"]["heads"]
    assert not checks["fixing"]["ok"] and checks["fixing"]["last_fixed_date"] is None
    assert checks["calendar"]["complete_through"] >= "2026-12-31"

    # Publish the latest due fixing (the one the check expects), through the fixing job.
    expected = dt.date.fromisoformat(checks["fixing"]["expected_date"])
    ingest_days(engine, catalogue, tmp_path / "feeds", sorted({BASE, expected}))
    with session_scope(engine) as session:
        compute(session, BASE, BASE, now=dt.datetime.combine(BASE, dt.time(16), BEIJING))
    Runner(engine, settings, holder="test", jobs=(FIXING,)).run_due()
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["checks"]["fixing"]["last_fixed_date"] == expected.isoformat()


def test_readyz_is_not_ready_when_the_database_cannot_be_reached(tmp_path):
    settings = Settings(database_url="postgresql+psycopg://postgres@127.0.0.1:1/none")
    client = TestClient(create_app(settings, migrate=False))
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["database"]["ok"] is False
    assert client.get("/healthz").status_code == 200  # alive all the same
    # No key can be checked without the database: the scrape fails and Prometheus's own
    # up == 0 reports the outage.
    answer = client.get("/metrics", headers={"Authorization": "Bearer bcpi_" + "x" * 43})
    assert answer.status_code == 503


def test_metrics_count_requests_ingest_and_jobs(ops, catalogue, tmp_path):
    client, engine, settings, admin, _ = ops
    client.headers["Authorization"] = f"Bearer {admin}"
    ingest_days(engine, catalogue, tmp_path / "feeds", [BASE, dt.date(2025, 1, 3)])
    clock = lambda: FRIDAY_EVENING  # noqa: E731
    with session_scope(engine) as session:
        compute(session, BASE, BASE, now=dt.datetime.combine(BASE, dt.time(16), BEIJING))
    runs = Runner(engine, settings, holder="test", jobs=(FIXING,), clock=clock).run_due()
    assert [r.outcome for r in runs] == ["succeeded"] * len(runs) and runs
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "trade_id,commodity,traded_at,price,quantity,currency,unit\n"
        "x1,REBAR,2025-01-03T10:00:00+08:00,-5,100,CNY,t\n"
        "x2,REBAR,2025-01-03T10:00:00+08:00,3300,-1,CNY,t\n"
        "x3,REBAR,2025-01-03T10:00:00+08:00,-7,100,CNY,t\n",
        encoding="utf-8",
    )
    with session_scope(engine) as session:
        rejected = ingest_file(session, catalogue, bad, "BJCX")
    reasons = {r.code for r in rejected.rejections}
    assert reasons == {"non_positive_price", "non_positive_quantity"}

    route = (
        "bcpi_http_requests_total",
        (("method", "GET"), ("route", "/v1/indices"), ("status", "200")),
    )
    missing = (
        "bcpi_http_requests_total",
        (("method", "GET"), ("route", "/v1/indices/{code}/series"), ("status", "404")),
    )
    before = _samples(client.get("/metrics").text)  # counters live as long as the process
    for _ in range(3):
        assert client.get("/v1/indices").status_code == 200
    client.get("/v1/indices/NOPE/series")
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    metrics = _samples(answer.text)
    assert metrics[route] - before.get(route, 0) == 3
    assert metrics[missing] - before.get(missing, 0) == 1
    trades_per_exchange = 2 * 9 * 3  # days × commodities × trades per exchange and day
    for exchange in ("BJCX", "BSTX", "CBEEX"):
        key = (("exchange", exchange), ("outcome", "accepted"))
        assert metrics[("bcpi_ingest_rows_total", key)] == trades_per_exchange
    assert metrics[("bcpi_ingest_rows_total", (("exchange", "BJCX"), ("outcome", "rejected")))] == 3
    by_reason = {
        labels: value
        for (name, labels), value in metrics.items()
        if name == "bcpi_ingest_rejections_total"
    }
    assert by_reason == {
        (("exchange", "BJCX"), ("reason", "non_positive_price")): 2,
        (("exchange", "BJCX"), ("reason", "non_positive_quantity")): 1,
    }
    fixings = metrics[("bcpi_job_runs", (("job", "fixing"), ("outcome", "succeeded")))]
    assert fixings == len(runs)
    assert metrics[("bcpi_job_attempts_total", (("job", "fixing"),))] == len(runs)
    assert ("bcpi_job_lag_seconds", (("job", "fixing"),)) in metrics
    assert metrics[("bcpi_database_up", ())] == 1
    assert ("bcpi_index_publication_age_seconds", (("status", "final"),)) in metrics
    calendar = client.get("/readyz").json()["checks"]["calendar"]
    assert metrics[("bcpi_calendar_days_to_horizon", ())] == calendar["days_to_horizon"]


def test_ops_jobs_needs_an_admin_key_and_lists_runs_and_schedules(ops, catalogue, tmp_path):
    client, engine, settings, admin, reader = ops
    assert client.get("/v1/ops/jobs").status_code == 401
    assert client.get("/v1/ops/jobs", headers={"X-API-Key": "bcpi_wrong"}).status_code == 401
    forbidden = client.get("/v1/ops/jobs", headers={"Authorization": f"Bearer {reader}"})
    assert forbidden.status_code == 403 and forbidden.json()["error"] == "Forbidden"

    ingest_days(engine, catalogue, tmp_path / "feeds", [BASE, dt.date(2025, 1, 3)])
    clock = lambda: FRIDAY_EVENING  # noqa: E731
    Runner(engine, settings, holder="host:1:abc", jobs=(FIXING,), clock=clock).run_due()
    headers = {"Authorization": f"Bearer {admin}"}
    answer = client.get("/v1/ops/jobs", headers=headers)
    assert answer.status_code == 200
    body = answer.json()
    assert [job["job"] for job in body["jobs"]] == [job.name for job in JOBS]
    fixing = next(job for job in body["jobs"] if job["job"] == "fixing")
    assert fixing["next_slot"] > body["now"]
    assert fixing["last_run"]["outcome"] == "succeeded"
    slots = [run["slot"] for run in body["runs"]]
    assert slots == sorted(slots, reverse=True)
    first = body["runs"][-1]
    assert first["job"] == "fixing" and first["holder"] == "host:1:abc"
    assert first["attempts"] == 1 and first["error"] is None and first["seconds"] >= 0
    assert first["slot"].startswith("2024-12-30T07:00:00")  # 7 days back, 15:00 Beijing
    assert {"date", "index_values"} <= set(first["detail"])

    only = client.get(
        "/v1/ops/jobs",
        headers=headers,
        params={"job": "fixing", "limit": 1, "outcome": "succeeded"},
    ).json()
    assert len(only["runs"]) == 1 and only["runs"][0]["slot"] == slots[0]
    since = client.get(
        "/v1/ops/jobs", headers=headers, params={"since": "2025-01-03T00:00:00+08:00"}
    ).json()
    assert [run["slot"][:10] for run in since["runs"]] == ["2025-01-03"]
    for params, field in [
        ({"job": "nope"}, "job"),
        ({"outcome": "exploded"}, "outcome"),
        ({"limit": 0}, "limit"),
        ({"since": "2025-01-03T00:00:00"}, "since"),
    ]:
        bad = client.get("/v1/ops/jobs", headers=headers, params=params)
        assert bad.status_code in (400, 422), params
        assert field in json.dumps(bad.json()["detail"]) or field in bad.json()["detail"]


def test_logs_are_one_json_object_per_line_with_the_fields_given():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("bcpi.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("job %s failed", "fixing", extra={"job": "fixing", "slot": "2026-11-26"})
        try:
            raise ValueError("bad day")
        except ValueError:
            logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "job fixing failed" and first["level"] == "warning"
    assert first["job"] == "fixing" and first["slot"] == "2026-11-26"
    assert first["logger"] == "bcpi.test.json" and "ts" in first and "pid" in first
    assert "ValueError: bad day" in second["exception"]

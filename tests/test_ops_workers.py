"""Two API workers (``bcpi serve --workers 2``) answer correctly while ``bcpi scheduler``
publishes fixings into the same database; the API processes never run a job."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from publication.fixing import compute
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from store.models import JobRun, SchedulerInstance
from tests.scheduler_support import BEIJING, ingest_days, price_factor

ROOT = Path(__file__).resolve().parent.parent
BCPI = str(Path(sys.executable).with_name("bcpi"))
BASE = dt.date(2025, 1, 2)
DAYS = [dt.date(2025, 1, d) for d in (3, 6, 7, 8, 9, 10, 13, 14)]  # publication days after the base


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serving_pids(log: Path) -> set[int]:
    """The worker processes uvicorn says it started (its JSON log lines)."""
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return {e["pid"] for e in lines if e["message"].startswith("Started server process")}


def _expected_cotton(day: dt.date) -> float:
    """Commodity index = VWAP / VWAP on the base date × 1000 (see write_trades)."""
    return price_factor(day) / price_factor(BASE) * 1000.0


def test_two_api_workers_answer_correctly_while_the_scheduler_publishes(
    database_url, catalogue, tmp_path
):
    engine = make_engine(database_url)
    prepare_database(engine, catalogue)
    ingest_days(engine, catalogue, tmp_path / "feeds", [BASE, *DAYS])
    with session_scope(engine) as session:
        compute(session, BASE, BASE, now=dt.datetime.combine(BASE, dt.time(16), BEIJING))

    port = _free_port()
    env = {
        **os.environ,
        "BCPI_DATABASE_URL": database_url,
        "BCPI_SCHEDULER_JOBS": json.dumps(["fixing"]),
        # Catch-up reaches back to these January 2025 days: hundreds of fixings to publish.
        "BCPI_CATCHUP_HORIZON_DAYS": str((dt.date.today() - BASE).days + 2),
        "BCPI_HEARTBEAT_SECONDS": "0.5",
        "BCPI_LOG_FORMAT": "json",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    scheduler_log, api_log = tmp_path / "scheduler.log", tmp_path / "api.log"
    api = subprocess.Popen(
        [BCPI, "serve", "--workers", "2", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stderr=api_log.open("w"),
    )
    base_url = f"http://127.0.0.1:{port}"
    scheduler = None
    answers: list[list[dict]] = []
    failures: list[str] = []
    stop = threading.Event()

    def read_series() -> None:
        with httpx.Client(base_url=base_url, timeout=10) as client:
            while not stop.is_set():
                reply = client.get(
                    "/v1/indices/COTTON/series",
                    params={"start": BASE.isoformat(), "end": DAYS[-1].isoformat()},
                )
                if reply.status_code != 200:
                    failures.append(f"{reply.status_code}: {reply.text[:200]}")
                    continue
                answers.append(reply.json()["points"])
                if client.get("/v1/indices/BCPI/series").status_code != 200:
                    failures.append("composite series failed")

    try:
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, api_log.read_text()[-3000:]
            assert api.poll() is None, api_log.read_text()[-3000:]
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        readers = [threading.Thread(target=read_series) for _ in range(4)]
        for reader in readers:
            reader.start()
        scheduler = subprocess.Popen(
            [BCPI, "scheduler"], cwd=ROOT, env=env, stderr=scheduler_log.open("w")
        )
        while True:  # until every January fixing is out, and a little longer
            assert time.monotonic() < deadline, scheduler_log.read_text()[-3000:]
            assert scheduler.poll() is None, scheduler_log.read_text()[-3000:]
            if answers and len(answers[-1]) == 1 + len(DAYS):
                break
            time.sleep(0.2)
        time.sleep(2)
        stop.set()
        for reader in readers:
            reader.join(timeout=30)
        with session_scope(engine) as session:
            still_publishing = session.scalar(
                select(JobRun.slot).order_by(JobRun.started_at.desc()).limit(1)
            )
    finally:
        stop.set()
        processes = [p for p in (api, scheduler) if p is not None]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        exits = [process.wait(timeout=30) for process in processes]

    workers = _serving_pids(api_log)
    assert len(workers) == 2 and api.pid not in workers, api_log.read_text()[-2000:]
    assert failures == []
    assert len(answers) > 20
    expected_days = [BASE, *DAYS]
    for points in answers:  # every answer, at any moment of the publication, is right
        dates = [dt.date.fromisoformat(p["date"]) for p in points]
        assert dates == expected_days[: len(dates)]
        for point, day in zip(points, dates, strict=True):
            assert point["status"] == "final"
            assert point["value"] == pytest.approx(_expected_cotton(day), rel=1e-9)
    assert len({len(points) for points in answers}) > 1  # they saw the fixings arrive
    assert still_publishing.astimezone(BEIJING).date() > DAYS[-1]  # the scheduler went on
    assert exits == [0, 0]

    with session_scope(engine) as session:
        holders = set(session.scalars(select(JobRun.holder)))
        instances = session.scalars(select(SchedulerInstance.pid)).all()
    assert {holder.split(":")[1] for holder in holders} == {str(scheduler.pid)}
    assert instances == []  # the scheduler removed its heartbeat row on SIGTERM
    engine.dispose()

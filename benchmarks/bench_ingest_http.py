"""HTTP push end to end: batches of 10,000 trades as Arrow IPC streams and as JSON arrays.

uvicorn serves the app in a subprocess on 127.0.0.1 (one worker; SQLite unless
``BCPI_BENCH_DATABASE_URL`` names another database). One keep-alive client pushes
``BCPI_BENCH_PUSHES`` batches (default 30) of new trades per format, each answered only
after its commit, and, as the same server's trivial peer, as many ``GET /healthz``.
Reported: ticks/s per format (targets: Arrow ≥ 200,000, JSON ≥ 50,000), requests/s of
both, and the ratio push/trivial requests. Run:

    .venv/bin/pytest benchmarks/bench_ingest_http.py --benchmark-enable -s
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import time

import httpx
import pytest

from bcpi.catalogue import load_catalogue
from bcpi.settings import Settings
from ingest.synthetic import ticks
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from store.reference import add_exchange
from tests.publication_server import serve

ROWS = 10_000
PUSHES = int(os.environ.get("BCPI_BENCH_PUSHES", "30"))
TARGETS = {"arrow": 200_000, "json": 50_000}
MEDIA = {"arrow": "application/vnd.apache.arrow.stream", "json": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("push")
    url = os.environ.get("BCPI_BENCH_DATABASE_URL") or f"sqlite:///{root / 'bcpi.db'}"
    engine = make_engine(url)
    prepare_database(engine, load_catalogue(Settings().catalogue_path))
    with session_scope(engine) as session:
        _, key = add_exchange(session, f"B{time.time_ns() % 10**8}", "benchmark exchange")
    engine.dispose()
    with serve(url, archive_dir=str(root / "archive")) as running:
        running.key = key
        yield running


def _bodies(fmt: str) -> list[bytes]:
    bodies = []
    for n in range(PUSHES + 2):
        frame = ticks(ROWS, start=dt.date(2025, 1, 2), seed=n, prefix=f"{fmt}{n}-")
        if fmt == "json":
            bodies.append(json.dumps(frame.to_dicts()).encode())
        else:
            out = io.BytesIO()
            frame.write_ipc_stream(out)
            bodies.append(out.getvalue())
    return bodies


@pytest.mark.parametrize("fmt", ["arrow", "json"])
def test_push_batches_of_10000(benchmark, server, fmt):
    bodies = _bodies(fmt)
    headers = {"Authorization": f"Bearer {server.key}", "Content-Type": MEDIA[fmt]}
    with httpx.Client(base_url=server.url, timeout=120) as client:
        for body in bodies[:2]:  # warm up
            assert client.post("/v1/trades", content=body, headers=headers).status_code == 200
        pending = iter(bodies[2:])

        def push_one() -> None:
            answer = client.post("/v1/trades", content=next(pending), headers=headers)
            assert answer.status_code == 200 and answer.json()["accepted"] == ROWS, answer.text

        started = time.perf_counter()
        benchmark.pedantic(push_one, rounds=PUSHES, iterations=1)
        push_seconds = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(PUSHES):
            assert client.get("/healthz").status_code == 200
        trivial_seconds = time.perf_counter() - started
    ticks_per_s = PUSHES * ROWS / push_seconds
    verdict = "meets" if ticks_per_s >= TARGETS[fmt] else "misses"
    print(
        f"\n{fmt}: {ticks_per_s:,.0f} ticks/s ({PUSHES} pushes of {ROWS:,};"
        f" {verdict} the {TARGETS[fmt]:,} target); pushes {PUSHES / push_seconds:,.1f}/s,"
        f" trivial GET /healthz {PUSHES / trivial_seconds:,.1f}/s,"
        f" ratio push/trivial {trivial_seconds / push_seconds:.3f}"
    )

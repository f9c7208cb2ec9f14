"""Where an HTTP push's time goes: ten Arrow pushes of 10,000 live trades through the app in
process, each phase of the push path timed.

    .venv/bin/python -m benchmarks.profile_push                     # SQLite, a scratch file
    .venv/bin/python -m benchmarks.profile_push postgresql+psycopg://postgres@127.0.0.1:5432/EMPTY_DB
"""

from __future__ import annotations

import collections
import datetime as dt
import io
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from fastapi.testclient import TestClient

import ingest.push as push
from api.app import create_app
from cli.synthetic import ticks, trading_days
from core.catalogue import load_catalogue
from core.settings import Settings
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from store.reference import add_exchange

ROWS, WARM, PUSHES = 10_000, 2, 10
PHASES = {
    "read_body": "read (decode, limits)",
    "archive_bytes": "archive",
    "prepare": "validate + normalise (before the write transaction)",
    "_commit": "write transaction (insert, batch record, commit)",
    "ingest_batch": "  of which the insert (ingest_batch)",
}


def main(url: str | None = None) -> None:
    root = Path(tempfile.mkdtemp(prefix="bcpi-profile-"))
    url = url or f"sqlite:///{root / 'bcpi.db'}"
    engine = make_engine(url)
    prepare_database(engine, load_catalogue(Settings().catalogue_path))
    with session_scope(engine) as session:
        _, key = add_exchange(session, f"P{time.time_ns() % 10**8}", "profile")
    engine.dispose()
    spent: dict[str, float] = collections.defaultdict(float)

    def timed(name, function):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - started

        return wrapper

    for name in PHASES:
        setattr(push, name, timed(name, getattr(push, name)))
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/vnd.apache.arrow.stream",
    }
    total = 0.0
    app = create_app(Settings(database_url=url, archive_dir=root / "archive"))
    with TestClient(app) as client:
        for n, day in enumerate(trading_days(dt.date(2025, 3, 3), WARM + PUSHES)):
            prefix = f"p{n}-"
            frame = ticks(ROWS, start=day, days=1, seed=n, prefix=prefix).sort("traded_at")
            frame = frame.with_columns(
                pl.format("{}{}", pl.lit(prefix), pl.int_range(1, ROWS + 1)).alias("trade_id")
            )
            body = io.BytesIO()
            frame.write_ipc_stream(body)
            if n == WARM:
                spent.clear()
                total = 0.0
            started = time.perf_counter()
            answer = client.post("/v1/trades", content=body.getvalue(), headers=headers)
            total += time.perf_counter() - started
            assert answer.status_code == 200, answer.text
    print(
        f"{PUSHES} Arrow pushes of {ROWS:,} trades ({url.split(':')[0]}): "
        f"{total / PUSHES * 1000:.1f} ms a push in process"
    )
    for name, label in PHASES.items():
        print(f"  {label:55s} {spent[name] / PUSHES * 1000:7.1f} ms")


if __name__ == "__main__":
    main(*sys.argv[1:2])

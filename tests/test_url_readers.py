"""A series read straight from its URL by Polars and pandas, as RFC 9110 byte ranges allow.

Polars' HTTP reader asks for ``HEAD``, then ``Range: bytes=-N`` and small ranges; pandas
downloads the whole answer. Each reader's values are compared with the series' JSON. The
protocol is checked with httpx against a server with its answer cache and one without
(every answer made again, so its bytes must be the same every time). Under
``require_read_key`` the key may be in the URL (``?api_key=``), and no log line holds it.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import polars as pl
import pytest
from starlette.applications import Starlette
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from api.conditional import CACHE_ENTRY_BYTES, ConditionalMiddleware
from store.db import session_scope
from store.reference import create_key
from tests.publication_data import T0, level, publish_index, weekdays
from tests.publication_server import _free_port, serve

ROOT = Path(__file__).resolve().parent.parent
DAYS = weekdays(dt.date(2016, 1, 1), 2610)  # ten years of weekdays
SERIES = "/v1/indices/BCPI/series"
T0_HTTP = "Mon, 02 Mar 2026 09:00:00 GMT"  # T0, a Monday, as an IMF-fixdate
LATER_HTTP = "Mon, 02 Mar 2026 10:00:00 GMT"


@pytest.fixture
def published(engine):
    publish_index(engine, "BCPI", {d: level(d) for d in DAYS}, now=T0)
    return engine


def _json_points(base: str, **headers: str) -> tuple[list[str], list[float]]:
    answer = httpx.get(base + SERIES, params={"format": "json"}, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    points = answer.json()["points"]
    return [p["date"] for p in points], [p["value"] for p in points]


def _columns(frame) -> tuple[list[str], list[float]]:
    if isinstance(frame, pl.DataFrame):
        dates, values = frame["date"].cast(pl.String).to_list(), frame["value"].to_list()
    else:
        dates, values = frame["date"].astype(str).tolist(), frame["value"].tolist()
    return [str(d)[:10] for d in dates], values


def _read_everything(url: str, key: str = "") -> dict:
    """The calls a researcher writes, one line each."""
    return {
        "pl.read_parquet": pl.read_parquet(f"{url}{SERIES}?format=parquet{key}"),
        "pl.scan_parquet": pl.scan_parquet(f"{url}{SERIES}?format=parquet{key}").collect(),
        "pl.read_csv": pl.read_csv(f"{url}{SERIES}?format=csv{key}"),
        "pl.read_ipc_stream": pl.read_ipc_stream(f"{url}{SERIES}?format=arrow{key}"),
        "pl.read_ipc": pl.read_ipc(f"{url}{SERIES}?format=ipc{key}"),
        "pd.read_parquet": pd.read_parquet(f"{url}{SERIES}?format=parquet{key}"),
        "pd.read_csv": pd.read_csv(f"{url}{SERIES}?format=csv{key}"),
    }


def _assert_same_series(frames: dict, dates: list[str], values: list[float]) -> None:
    assert len(dates) == len(DAYS) and dates[0] == DAYS[0].isoformat()
    for reader, frame in frames.items():
        got_dates, got_values = _columns(frame)
        assert got_dates == dates, reader
        assert got_values == pytest.approx(values, rel=1e-15, abs=0), reader


def test_polars_and_pandas_read_a_series_from_its_url(published, database_url):
    with serve(database_url) as server:
        frames = _read_everything(server.url)
        dates, values = _json_points(server.url)
    _assert_same_series(frames, dates, values)


def test_polars_read_ipc_reads_the_arrow_file(published, database_url):
    with serve(database_url) as server:
        frame = pl.read_ipc(f"{server.url}{SERIES}?format=ipc")
        assert _columns(frame) == _json_points(server.url)


def _read_key(engine) -> str:
    with session_scope(engine) as session:
        return create_key(session, "read")


def test_readers_send_the_key_in_the_url_when_keys_are_required(published, database_url):
    key = _read_key(published)
    with serve(database_url, require_read_key="true") as server:
        missing = httpx.get(f"{server.url}{SERIES}?format=parquet", timeout=30)
        assert missing.status_code == 401 and "api_key" in missing.json()["detail"]
        wrong = httpx.get(f"{server.url}{SERIES}?format=parquet&api_key=bcpi_nope", timeout=30)
        assert wrong.status_code == 401
        with pytest.raises(Exception, match="401"):
            pl.read_parquet(f"{server.url}{SERIES}?format=parquet")
        frames = _read_everything(server.url, f"&api_key={key}")
        dates, values = _json_points(server.url, authorization=f"Bearer {key}")
        # One key, sent either way: one answer, one tag.
        by_query = httpx.head(f"{server.url}{SERIES}?format=csv&api_key={key}", timeout=30)
        by_header = httpx.head(f"{server.url}{SERIES}?format=csv", headers={"x-api-key": key})
        assert by_query.headers["etag"] == by_header.headers["etag"]
    _assert_same_series(frames, dates, values)


def test_a_key_in_the_url_does_not_open_cached_answers_to_callers_without_it(
    published, database_url
):
    key = _read_key(published)
    with serve(database_url) as server:  # keys optional: anonymous reads allowed too
        url = f"{server.url}{SERIES}?format=csv"
        keyed = httpx.get(f"{url}&api_key={key}", timeout=30)
        anonymous = httpx.get(url, timeout=30)
        assert keyed.status_code == anonymous.status_code == 200
        assert keyed.headers["etag"] != anonymous.headers["etag"]
        conditional = httpx.get(url, headers={"if-none-match": keyed.headers["etag"]})
        assert conditional.status_code == 200


@pytest.mark.parametrize("cache_mb", ["64", "0"], ids=["cached", "uncached"])
def test_byte_ranges_head_and_validators(published, database_url, cache_mb):
    with (
        serve(database_url, response_cache_mb=cache_mb) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        url = f"{SERIES}?format=parquet"
        whole = client.get(url)
        body, size, tag = whole.content, len(whole.content), whole.headers["etag"]
        assert whole.status_code == 200 and body[:4] == body[-4:] == b"PAR1"
        assert tag.startswith('"') and not tag.startswith("W/")  # strong
        assert whole.headers["accept-ranges"] == "bytes"
        assert whole.headers["last-modified"] == T0_HTTP
        assert int(whole.headers["content-length"]) == size

        head = client.head(url)
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) == size
        assert (head.headers["etag"], head.headers["last-modified"]) == (tag, T0_HTTP)
        assert head.headers["accept-ranges"] == "bytes"

        for fmt in ("parquet", "arrow", "csv", "json"):  # the same bytes every time
            first = client.get(SERIES, params={"format": fmt})
            assert [client.get(SERIES, params={"format": fmt}).content for _ in range(2)] == [
                first.content
            ] * 2, fmt

        def ranged(value: str, **headers: str) -> httpx.Response:
            named = {name.replace("_", "-"): v for name, v in headers.items()}
            return client.get(url, headers={"range": value, **named})

        footer = ranged("bytes=-8")
        assert footer.status_code == 206 and footer.content == body[-8:]
        assert footer.headers["content-range"] == f"bytes {size - 8}-{size - 1}/{size}"
        assert footer.headers["content-length"] == "8"
        assert footer.headers["etag"] == tag and footer.headers["last-modified"] == T0_HTTP
        longer = ranged("bytes=-262144")  # more than there is: all of it
        assert longer.status_code == 206 and longer.content == body
        assert longer.headers["content-range"] == f"bytes 0-{size - 1}/{size}"
        magic = ranged("bytes=0-3")
        assert magic.status_code == 206 and magic.content == b"PAR1"
        assert magic.headers["content-range"] == f"bytes 0-3/{size}"
        past = ranged(f"bytes={size - 10}-{size + 5000}")
        assert past.status_code == 206 and past.content == body[-10:]
        assert past.headers["content-range"] == f"bytes {size - 10}-{size - 1}/{size}"
        assert ranged("bytes=100-").content == body[100:]
        assert ranged("bytes=100-199").content == body[100:200]
        for unsatisfiable in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0"):
            refused = ranged(unsatisfiable)
            assert refused.status_code == 416, unsatisfiable
            assert refused.headers["content-range"] == f"bytes */{size}"
            assert refused.json()["error"] == "RangeNotSatisfiable"
        for ignored in ("bytes=0-1,5-6", "bytes=abc", "items=0-3", "bytes=9-3"):
            answer = ranged(ignored)  # several ranges, or not a byte range: all of it
            assert answer.status_code == 200 and answer.content == body, ignored

        assert ranged("bytes=0-3", if_range=tag).status_code == 206
        for stale in ('"another"', f"W/{tag}", T0_HTTP):
            answer = ranged("bytes=0-3", if_range=stale)
            assert answer.status_code == 200 and answer.content == body, stale

        not_modified = client.get(url, headers={"if-none-match": tag})
        assert not_modified.status_code == 304 and not_modified.content == b""
        assert not_modified.headers["etag"] == tag
        assert client.head(url, headers={"if-none-match": tag}).status_code == 304

        missing = client.get("/v1/indices/NOPE/series?format=parquet", headers={"range": "0-3"})
        assert missing.status_code == 404 and missing.json()["error"] == "UnknownIndex"
        assert client.head("/v1/indices/NOPE/series").status_code == 404

        publish_index(published, "BCPI", {DAYS[-1]: 1.0}, now=T0 + dt.timedelta(hours=1))
        fresh = client.get(url)
        assert fresh.headers["etag"] != tag and fresh.content != body
        assert fresh.headers["last-modified"] == LATER_HTTP
        assert pl.read_parquet(fresh.content)["value"][-1] == 1.0
        changed = ranged("bytes=0-3", if_range=tag)  # the part of an answer gone: all anew
        assert changed.status_code == 200 and changed.content == fresh.content
        assert client.get(url, headers={"if-none-match": tag}).status_code == 200


def _counting_app(body: bytes, streamed: bool):
    built = []

    async def series(_request):
        built.append(1)
        if streamed:
            pieces = [body[at : at + 2**20] for at in range(0, len(body), 2**20)]
            return StreamingResponse(iter(pieces), media_type="application/octet-stream")
        return Response(body, media_type="application/vnd.apache.parquet")

    return Starlette(routes=[Route(SERIES, series)]), built


def _conditional(engine, app) -> TestClient:
    middleware = ConditionalMiddleware(
        app, engine=engine, catalogue_digest="test", cache_bytes=64 * 2**20
    )
    return TestClient(middleware)


def test_a_cached_answer_is_made_once_for_all_the_ranges_of_a_reader(engine):
    body = bytes(range(256)) * 400
    app, built = _counting_app(body, streamed=False)
    client = _conditional(engine, app)
    head = client.head(SERIES)
    assert int(head.headers["content-length"]) == len(body)
    assert client.get(SERIES, headers={"range": "bytes=-262144"}).content == body
    assert client.get(SERIES, headers={"range": "bytes=0-3"}).content == body[:4]
    assert client.get(SERIES, headers={"range": "bytes=500-999"}).content == body[500:1000]
    assert client.get(SERIES).content == body
    assert len(built) == 1


def test_an_answer_too_large_to_cache_is_made_whole_for_a_range_and_streamed_without(engine):
    body = os.urandom(CACHE_ENTRY_BYTES + 3 * 2**20 + 17)
    app, built = _counting_app(body, streamed=True)
    client = _conditional(engine, app)
    assert int(client.head(SERIES).headers["content-length"]) == len(body)
    tail = client.get(SERIES, headers={"range": "bytes=-100"})
    assert tail.status_code == 206 and tail.content == body[-100:]
    assert tail.headers["content-range"] == f"bytes {len(body) - 100}-{len(body) - 1}/{len(body)}"
    middle = client.get(SERIES, headers={"range": f"bytes={2**20 - 5}-{5 * 2**20}"})
    assert middle.content == body[2**20 - 5 : 5 * 2**20 + 1]
    with client.stream("GET", SERIES) as whole:
        assert "content-length" not in whole.headers  # streamed as it is made
        assert whole.headers["accept-ranges"] == "bytes"
        assert whole.read() == body
    assert len(built) == 4


def _launch(launcher: str, env: dict, port: int, log) -> subprocess.Popen:
    if launcher == "bcpi serve":
        command = [sys.executable, "-c", "from cli.main import main; main()", "serve"]
        command += ["--port", str(port)]
    else:  # plain uvicorn: its own logging configuration, access log on
        command = [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app"]
        command += ["--port", str(port), "--log-level", "info"]
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log)


@pytest.mark.parametrize("launcher", ["bcpi serve", "uvicorn"])
def test_no_log_line_holds_a_key_sent_in_the_url(published, database_url, tmp_path, launcher):
    key = _read_key(published)
    port = _free_port()
    env = {
        **os.environ,
        "BCPI_DATABASE_URL": database_url,
        "BCPI_REQUIRE_READ_KEY": "true",
        "BCPI_LOG_LEVEL": "debug",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"
    with log.open("w") as sink:
        server = _launch(launcher, env, port, sink)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert len(pl.read_parquet(f"{base}{SERIES}?format=parquet&api_key={key}")) == len(DAYS)
        assert len(pd.read_csv(f"{base}{SERIES}?api_key={key}&format=csv")) == len(DAYS)
        for query in (f"api%5Fkey={key}", f"API_KEY={key}&format=json", f"api_key={key[:-1]}x"):
            httpx.get(f"{base}{SERIES}?{query}", timeout=30)
        httpx.get(f"{base}/v1/nowhere?api_key={key}", timeout=30)
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log.read_text(errors="replace")
    assert f"GET {SERIES}?format=parquet&api_key=[redacted]" in text  # the access log was on
    lines = [line for line in text.splitlines() if key in line or key[12:] in line]
    assert lines == []

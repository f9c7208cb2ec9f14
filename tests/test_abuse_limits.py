"""Limits against a real ``bcpi serve`` process: oversize bodies, and a burst of reads.

- 200 MB bodies to ``POST /v1/trades`` (default limit 32 MB): declared by Content-Length,
  streamed chunked without a length, and gzip bombs (200 MB of rows inflating from a few
  hundred kB), each with and without a length. Every one is answered 413, and the server's
  resident memory (``/proc/<pid>/status``) after them is less than 50 MB above what it was
  before; the peak (VmHWM) is printed too.
- A burst of ``run_size(80, 400)`` reads with one read key limited to 25 per window, sent
  on fresh connections to ``bcpi serve --workers 2``: exactly 25 answered 200, the rest 429
  with ``Retry-After``, and both workers answered (the access log names their pids).
"""

from __future__ import annotations

import concurrent.futures
import gzip
import json
import os
import select
import socket
import subprocess
import sys
import time
import zlib
from pathlib import Path

import httpx

from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from store.reference import create_key
from tests.support_api import issue_keys, own_trade_rows, run_size

ROOT = Path(__file__).resolve().parent.parent
BCPI = str(Path(sys.executable).with_name("bcpi"))
MB = 1024 * 1024
BODY = 200 * MB
CHUNK = 256 * 1024
LIMIT = 25
BURST = run_size(80, 400)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident) of a process, in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) * 1024
    return values


class Server:
    def __init__(self, env: dict, log: Path, workers: int = 1) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        command = [BCPI, "serve", "--port", str(self.port), "--workers", str(workers)]
        with log.open("w") as sink:
            self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=sink, stderr=sink)
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _environment(database_url: str, tmp_path: Path, **settings) -> dict:
    env = {
        **os.environ,
        "BCPI_DATABASE_URL": database_url,
        "BCPI_ARCHIVE_DIR": str(tmp_path / "archive"),
        "BCPI_LOG_FORMAT": "json",
        **{f"BCPI_{k.upper()}": str(v) for k, v in settings.items()},
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def send_raw(port: int, head: dict[str, str], chunks, *, chunked: bool) -> tuple[int, int]:
    """POST ``chunks`` on a raw socket, stopping as soon as the server answers; the status
    and the bytes actually sent (a client library would insist on sending everything)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(120)
    lines = ["POST /v1/trades HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in head.items())]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    sent = 0
    try:
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break  # answered before the body ended
            frame = b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk
            sock.sendall(frame)
            sent += len(chunk)
        else:
            if chunked:
                sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = b""
    while b"\r\n" not in answer:
        part = sock.recv(65536)
        if not part:
            break
        answer += part
    sock.close()
    return int(answer.split(b" ", 2)[1]), sent


def _rows_chunk() -> bytes:
    row = b"X,REBAR,2025-03-03T10:00:00+08:00,3300,50,CNY,t\n"
    return row * (CHUNK // len(row))


def plain_body():
    yield b"trade_id,commodity,traded_at,price,quantity,currency,unit\n"
    chunk = _rows_chunk()
    for _ in range(-(-BODY // len(chunk))):
        yield chunk


def gzip_bomb() -> bytes:
    """200 MB of CSV rows, gzip-compressed (a few hundred kB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(piece) for piece in plain_body()]
    parts.append(compressor.flush())
    return b"".join(parts)


def test_oversize_bodies_get_413_without_the_server_growing(
    database_url, catalogue, tmp_path, capsys
):
    engine = make_engine(database_url)
    prepare_database(engine, catalogue)
    key = issue_keys(engine).exchange
    engine.dispose()
    bomb = gzip_bomb()
    assert len(bomb) < 2 * MB and len(gzip.decompress(bomb)) >= BODY
    cases = [
        ("plain, Content-Length 200 MB", {"Content-Length": str(BODY)}, plain_body, False),
        ("plain, chunked", {}, plain_body, True),
        (
            "gzip bomb, Content-Length",
            {"Content-Length": str(len(bomb)), "Content-Encoding": "gzip"},
            lambda: (bomb[i : i + CHUNK] for i in range(0, len(bomb), CHUNK)),
            False,
        ),
        (
            "gzip bomb, chunked",
            {"Content-Encoding": "gzip"},
            lambda: (bomb[i : i + CHUNK] for i in range(0, len(bomb), CHUNK)),
            True,
        ),
    ]
    server = Server(_environment(database_url, tmp_path), tmp_path / "server.log")
    try:
        headers = {"X-API-Key": key}
        for _ in range(3):  # warm up: every code path a push takes is loaded
            warm = httpx.post(server.url + "/v1/trades", json=own_trade_rows(), headers=headers)
            assert warm.status_code == 200, warm.text
        before = _status(server.process.pid)
        lines, worst = [], 0
        for name, head, body, chunked in cases:
            head = {**head, "X-API-Key": key, "Content-Type": "text/csv"}
            status, sent = send_raw(server.port, head, body(), chunked=chunked)
            after = _status(server.process.pid)
            lines.append(
                f"  {name}: {status}, {sent / MB:.0f} MB sent before the answer,"
                f" RSS {(after['VmRSS'] - before['VmRSS']) / MB:+.1f} MB,"
                f" peak {(after['VmHWM'] - before['VmRSS']) / MB:+.1f} MB"
            )
            assert status == 413, name
            worst = max(worst, after["VmRSS"] - before["VmRSS"], after["VmHWM"] - before["VmRSS"])
        assert httpx.get(server.url + "/healthz").status_code == 200
    finally:
        server.stop()
    with capsys.disabled():
        print(
            f"\noversize bodies on {database_url.split(':')[0]} (limit 32 MB), from"
            f" RSS {before['VmRSS'] / MB:.0f} MB:\n" + "\n".join(lines)
        )
    assert worst < 50 * MB  # resident memory, and its peak, over what it was before


def _window_far_from_its_end(span: int) -> None:
    left = span - time.time() % span
    if left < 120:
        time.sleep(left + 1)


def test_a_burst_across_two_workers_is_cut_at_the_limit(database_url, catalogue, tmp_path, capsys):
    engine = make_engine(database_url)
    prepare_database(engine, catalogue)
    with session_scope(engine) as session:
        key = create_key(session, "read")
    engine.dispose()
    span = 86_400
    env = _environment(
        database_url, tmp_path, read_rate_limit=LIMIT, rate_limit_window_seconds=span
    )
    server = Server(env, tmp_path / "server.log", workers=2)
    try:
        _window_far_from_its_end(span)

        def read(_):
            # A fresh connection each time, so that either worker may take it.
            return httpx.get(
                server.url + "/v1/indices",
                headers={"Authorization": f"Bearer {key}", "Connection": "close"},
                timeout=60,
            )

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(read, range(BURST)))
        anonymous = httpx.get(server.url + "/v1/indices")  # another caller: not limited
    finally:
        server.stop()
    served = [a for a in answers if a.status_code == 200]
    limited = [a for a in answers if a.status_code == 429]
    entries = [
        json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")
    ]
    workers = {
        e["pid"]
        for e in entries
        if e.get("logger") == "uvicorn.access" and "/v1/indices" in e["message"]
    }
    with capsys.disabled():
        print(
            f"\nrate limit on {database_url.split(':')[0]}: {len(answers)} reads by one key"
            f" (limit {LIMIT}) over {len(workers)} workers: {len(served)} × 200,"
            f" {len(limited)} × 429"
        )
    assert len(served) == LIMIT and len(limited) == BURST - LIMIT
    for answer in limited:
        assert 0 < int(answer.headers["Retry-After"]) <= span
        assert answer.headers["X-RateLimit-Remaining"] == "0"
        assert answer.json()["error"] == "RateLimited"
    assert len(workers) == 2
    assert anonymous.status_code == 200

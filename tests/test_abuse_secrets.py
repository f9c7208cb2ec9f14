"""No plaintext API key anywhere but the one line that hands it over.

Keys are made with the ``bcpi`` command (``exchanges add``, ``exchanges rotate-key``, ``keys
create``, ``keys revoke``), then used against ``bcpi serve`` at debug log level in every
way a client may send them (``Authorization: Bearer``, ``X-API-Key``, ``?api_key=``),
valid, revoked and of the wrong role. Then: the server's whole log output, the commands'
diagnostics (stderr), a dump of the database (SQLite ``iterdump``, PostgreSQL ``pg_dump``
or, without it, every text column of every table) and every file the server wrote must
not hold any key, nor the part of it after the prefix shown in listings.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import String, Text, inspect, select, text
from sqlalchemy.engine import make_url

from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from store.reference import add_exchange, create_key

ROOT = Path(__file__).resolve().parent.parent
BCPI = str(Path(sys.executable).with_name("bcpi"))
PREFIX_SHOWN = 12  # the key's first characters, stored to name it in listings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bcpi(env: dict, *args: str) -> tuple[str, str]:
    done = subprocess.run(
        [BCPI, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def secrets_of(key: str) -> list[str]:
    """What must not appear: the key, and its part after the prefix shown in listings."""
    return [key, key[PREFIX_SHOWN:]]


def database_dump(database_url: str) -> str:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        with sqlite3.connect(url.database) as connection:
            return "\n".join(connection.iterdump())
    pg_dump = shutil.which("pg_dump")
    if pg_dump:
        plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
        done = subprocess.run([pg_dump, plain], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout
    engine = make_engine(database_url)
    parts = []
    with session_scope(engine) as session:
        inspector = inspect(session.connection())
        for table in inspector.get_table_names():
            for column in inspector.get_columns(table):
                if isinstance(column["type"], (String, Text)):
                    parts += session.scalars(
                        select(text(f'"{column["name"]}"')).select_from(text(f'"{table}"'))
                    ).all()
    engine.dispose()
    return "\n".join(str(p) for p in parts)


@pytest.fixture
def environment(database_url, catalogue, tmp_path) -> dict:
    engine = make_engine(database_url)
    prepare_database(engine, catalogue)
    engine.dispose()
    env = {
        **os.environ,
        "BCPI_DATABASE_URL": database_url,
        "BCPI_ARCHIVE_DIR": str(tmp_path / "archive"),
        "BCPI_LOG_LEVEL": "debug",
        "BCPI_LOG_FORMAT": "json",
        "BCPI_REQUIRE_READ_KEY": "true",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def test_no_key_in_logs_database_dump_or_files(environment, database_url, tmp_path, capsys):
    # Once leaked: the access log printed ?api_key=<key> (now redacted by core.logging).
    env = environment
    outputs: list[str] = []  # stderr of the commands: diagnostics, never a key

    def issued(*args: str) -> str:
        stdout, stderr = bcpi(env, *args)
        outputs.append(stderr)
        return stdout.strip()

    first_exchange = issued("exchanges", "add", "FZA", "--name", "Fuzz exchange A")
    exchange = issued("exchanges", "rotate-key", "FZA")  # revokes the first
    admin = issued("keys", "create", "--role", "admin")
    revoked_read = issued("keys", "create", "--role", "read")
    outputs.append(bcpi(env, "keys", "revoke", revoked_read[:PREFIX_SHOWN])[1])
    engine = make_engine(database_url)
    with session_scope(engine) as session:  # the same keys, made in process
        other = add_exchange(session, "FZB", "Fuzz exchange B")[1]
        read = create_key(session, "read")
    engine.dispose()
    keys = [first_exchange, exchange, other, admin, read, revoked_read]
    assert len(set(keys)) == len(keys) and all(k.startswith("bcpi_") for k in keys)

    port = _free_port()
    log = tmp_path / "server.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [BCPI, "serve", "--port", str(port)], env=env, cwd=ROOT, stdout=sink, stderr=sink
        )
    base = f"http://127.0.0.1:{port}"
    answers = []
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
        trade = {
            "trade_id": "S-1",
            "commodity": "REBAR",
            "traded_at": "2025-01-14T10:00:00+08:00",
            "price": "3300",
            "quantity": "50",
            "currency": "CNY",
            "unit": "t",
        }
        with httpx.Client(base_url=base, timeout=30) as client:
            for key in keys:
                for how in ("bearer", "header", "query"):
                    headers = {"Authorization": f"Bearer {key}"} if how == "bearer" else {}
                    headers |= {"X-API-Key": key} if how == "header" else {}
                    params = {"api_key": key} if how == "query" else {}
                    for path in ("/v1/indices", "/v1/ops/jobs", "/v1/trades/S-1", "/v1/nowhere"):
                        answers.append(client.get(path, headers=headers, params=params))
                    answers.append(
                        client.post(
                            "/v1/trades",
                            json=[{**trade, "trade_id": f"S-{how}-{key[-4:]}"}],
                            headers={**headers, "Idempotency-Key": f"idem-{how}-{key[-6:]}"},
                            params=params,
                        )
                    )
    finally:
        server.terminate()
        server.wait(timeout=30)
    statuses = {a.status_code for a in answers}
    assert {200, 401, 403, 404} <= statuses  # valid, unknown or revoked, wrong role, missing

    server_log = log.read_text(errors="replace")
    assert "GET /v1/indices" in server_log  # the access log was on
    dump = database_dump(database_url)
    written = [
        p.read_bytes().decode("utf-8", "replace") for p in tmp_path.rglob("*") if p.is_file()
    ]
    places = {"server log": server_log, "command stderr": "\n".join(outputs), "database": dump}
    places |= {f"file {i}": content for i, content in enumerate(written)}
    leaks = [
        f"{where} holds key {key[:PREFIX_SHOWN]}…"
        for key in keys
        for where, content in places.items()
        if any(secret in content for secret in secrets_of(key))
    ]
    with capsys.disabled():
        print(
            f"\nsecrets on {make_url(database_url).get_backend_name()}: {len(keys)} keys used in"
            f" {len(answers)} requests; searched {len(server_log)} bytes of server log, a"
            f" {len(dump)}-byte database dump and {len(written)} files: {len(leaks)} leaks"
        )
    assert not leaks, "\n".join(leaks)
    for key in keys:  # each key was handed over exactly once: on the command's stdout
        assert key[:PREFIX_SHOWN] in dump  # its listing prefix is what identifies it

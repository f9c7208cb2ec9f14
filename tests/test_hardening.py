"""Ingest that a hostile or careless feed cannot knock over: the smaller findings."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from cli.main import app as cli
from core.errors import InvalidInput
from store import models
from store.db import session_scope
from store.reference import add_exchange
from tests.feeds_support import client_for, exchange_key, push, role_key, stored_counts, trade


@pytest.fixture
def api(engine, database_url, tmp_path):
    with client_for(database_url, tmp_path / "archive") as client:
        client.engine = engine
        client.archive = tmp_path / "archive"
        client.key = exchange_key(engine, "BJCX")
        client.hdr = {"Authorization": f"Bearer {client.key}"}
        yield client


def _archived(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_change_to_an_unknown_trade_is_404_and_writes_nothing(api):
    push(api, api.key, [trade("T1")])
    before, counts = _archived(api.archive), stored_counts(api.engine)

    cancel = api.delete("/v1/trades/NOPE", headers=api.hdr)
    amend = api.put("/v1/trades/NOPE", json=trade("NOPE", price="3400"), headers=api.hdr)

    assert (cancel.status_code, amend.status_code) == (404, 404)
    assert "NOPE" in cancel.text
    assert _archived(api.archive) == before
    assert stored_counts(api.engine) == counts


def test_a_refused_amend_names_no_batch(api):
    push(api, api.key, [trade("T1")])
    answer = api.put("/v1/trades/T1", json=trade("T1", price="cheap"), headers=api.hdr)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert detail["rejected"] == 1 and detail["rejections"][0]["field"] == "price"
    assert detail["batch_id"] is None and detail["batch_ids"] == []


@pytest.mark.parametrize("code", ["", "X", "../../etc", "ВJCX", "bjcx", "A" * 17, "BJ CX"])
def test_an_exchange_code_outside_the_alphabet_is_refused_naming_it(database_url, engine, code):
    added = CliRunner().invoke(
        cli, ["exchanges", "add", code, "--name", "Bad", "--database-url", database_url]
    )
    assert added.exit_code == 2
    assert "A-Z, a digit 0-9, _ or -" in added.stderr and "2 to 16" in added.stderr
    with session_scope(engine) as session:
        with pytest.raises(InvalidInput, match="not allowed"):
            add_exchange(session, code, "Bad")
        assert session.scalar(select(func.count()).select_from(models.Exchange)) == 0


def test_an_exchange_code_inside_the_alphabet_is_accepted(database_url):
    added = CliRunner().invoke(
        cli, ["exchanges", "add", "BJ-CX_2", "--name", "Good", "--database-url", database_url]
    )
    assert added.exit_code == 0, added.stderr


def test_metrics_need_an_admin_or_metrics_key(api):
    assert api.get("/metrics").status_code == 401
    read = role_key(api.engine, "read")
    assert api.get("/metrics", headers={"Authorization": f"Bearer {read}"}).status_code == 403
    assert api.get("/metrics", headers=api.hdr).status_code == 403  # an exchange key
    for role in ("metrics", "admin"):
        key = role_key(api.engine, role)
        answer = api.get("/metrics", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200 and "bcpi_database_up" in answer.text


def test_the_rejected_rows_file_cannot_run_formulas_in_a_spreadsheet(
    database_url, engine, tmp_path, monkeypatch
):
    monkeypatch.setenv("BCPI_ARCHIVE_DIR", str(tmp_path / "archive"))
    exchange_key(engine, "BJCX")
    feed = tmp_path / "feed.csv"
    feed.write_text(
        "trade_id,commodity,traded_at,price,quantity,currency,unit\n"
        'F1,"=HYPERLINK(""http://x"")",2025-03-03T10:00:00+08:00,3300,10,CNY,t\n'
        "F2,REBAR,2025-03-03T10:00:00+08:00,-5,10,CNY,@SUM(A1)\n"
        '"+cmd|calc",REBAR,2025-03-03T10:00:00+08:00,3300,0,CNY,t\n'
        "F4,REBAR,2025-03-03T10:00:00+08:00,3300,10,CNY,t\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        cli, ["ingest", str(feed), "--exchange", "BJCX", "--database-url", database_url]
    )
    assert result.exit_code == 0, result.stderr
    rows = pl.read_csv(tmp_path / "feed.csv.rejected.csv", infer_schema=False)
    assert rows.height == 3
    cells = [cell for row in rows.rows() for cell in row if cell]
    assert '\'=HYPERLINK("http://x")' in cells and "'-5" in cells
    assert "'@SUM(A1)" in cells and "'+cmd|calc" in cells
    assert not [cell for cell in cells if cell[0] in "=+-@\t\r"]


def _scope(key: str) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/trades",
        "raw_path": b"/v1/trades",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"text/csv"),
            (b"authorization", f"Bearer {key}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def _upload_cut_short(app, key: str) -> list[dict]:
    """POST /v1/trades whose client goes away after the first part of the body."""
    scope = _scope(key)
    incoming = [
        {"type": "http.request", "body": b"trade_id,commodity\n", "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict] = []

    async def receive() -> dict:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_a_client_disconnecting_during_an_upload_is_logged_as_info(api, caplog):
    caplog.set_level(logging.INFO)
    counts = stored_counts(api.engine)
    _upload_cut_short(api.app, api.key)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    gone = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert gone and gone[0].levelno == logging.INFO and "/v1/trades" in gone[0].getMessage()
    assert stored_counts(api.engine) == counts


def test_a_trade_id_with_a_slash_is_addressable_url_encoded(api):
    assert push(api, api.key, [trade("DCE/2025/0001"), trade("T2")]).json()["accepted"] == 2
    shown = api.get("/v1/trades/DCE%2F2025%2F0001", headers=api.hdr)
    assert shown.status_code == 200 and shown.json()["trade_id"] == "DCE/2025/0001"

    amended = api.put(
        "/v1/trades/DCE%2F2025%2F0001",
        json=trade("DCE/2025/0001", price="3350"),
        headers=api.hdr,
    )
    assert amended.status_code == 200 and amended.json()["amended"] == 1
    assert api.get("/v1/trades/DCE%2F2025%2F0001", headers=api.hdr).json()["price"] == 3350.0

    cancelled = api.delete("/v1/trades/DCE%2F2025%2F0001", headers=api.hdr)
    assert cancelled.status_code == 200 and cancelled.json()["cancelled"] == 1
    assert api.get("/v1/trades/T2", headers=api.hdr).json()["status"] == "active"
    assert api.get("/v1/trades/DCE%2F2025", headers=api.hdr).status_code == 404


async def _stalled_upload(app, key: str, started: asyncio.Event, gone: asyncio.Event):
    """POST /v1/trades whose client sends a first part, then nothing until ``gone``."""
    parts = [{"type": "http.request", "body": b"trade_id,commodity\n", "more_body": True}]
    sent: list[dict] = []

    async def receive() -> dict:
        if parts:
            started.set()
            return parts.pop(0)
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(_scope(key), receive, send)
    return sent


def _status(sent: list[dict]) -> tuple[int, dict[str, str]]:
    [start] = [m for m in sent if m["type"] == "http.response.start"]
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}


def test_an_upload_slower_than_the_timeout_is_408(engine, database_url, tmp_path):
    with client_for(database_url, tmp_path / "a", upload_timeout_seconds=0.3) as client:
        key = exchange_key(engine, "BJCX")

        async def run():
            return await _stalled_upload(client.app, key, asyncio.Event(), asyncio.Event())

        sent = asyncio.run(asyncio.wait_for(run(), 10))
    status, _ = _status(sent)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert status == 408 and b"upload_timeout_seconds" in body


def test_a_key_sending_too_many_bodies_at_once_gets_429_with_retry_after(
    engine, database_url, tmp_path
):
    with client_for(database_url, tmp_path / "a", uploads_per_key=1) as client:
        key = exchange_key(engine, "BJCX")
        other = exchange_key(engine, "CBEEX")

        async def run():
            started, gone = asyncio.Event(), asyncio.Event()
            first = asyncio.create_task(_stalled_upload(client.app, key, started, gone))
            await started.wait()
            second = await _stalled_upload(client.app, key, asyncio.Event(), asyncio.Event())
            other_key = asyncio.create_task(
                _stalled_upload(client.app, other, asyncio.Event(), gone)
            )
            await asyncio.sleep(0.1)
            gone.set()
            await first, await other_key
            return second, other_key.result()

        second, other_sent = asyncio.run(asyncio.wait_for(run(), 10))
        status, headers = _status(second)
        assert status == 429 and int(headers["retry-after"]) > 0
        assert not [
            m for m in other_sent if m["type"] == "http.response.start" and m["status"] == 429
        ]
        answer = push(client, key, [trade("T1")])  # the slot is free again
        assert answer.status_code == 200

"""Keys and roles: 401 and 403, exchanges confined to their own trades, keys never kept
or logged in clear, the key commands printing the key alone on stdout."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from api.auth import AdminPrincipal, ExchangePrincipal, OptionalReader, ReaderPrincipal
from api.errors import install_error_handlers
from cli.main import app as cli
from core.settings import Settings
from store import models
from store.db import session_factory, session_scope
from store.reference import hash_key
from tests.feeds_support import client_for, exchange_key, push, role_key, stored_trades, trade


@pytest.fixture
def api(engine, database_url, tmp_path):
    with client_for(database_url, tmp_path / "archive") as client:
        client.engine = engine
        yield client


def _write_endpoints(client, key: str | None, trade_id: str = "T1"):
    """Every write endpoint, called with ``key`` (or none)."""
    headers = {"X-API-Key": key} if key else {}
    yield "POST /v1/trades", push(client, key, [trade(trade_id, price="3333")])
    yield "DELETE /v1/trades/{id}", client.delete(f"/v1/trades/{trade_id}", headers=headers)
    yield (
        "PUT /v1/trades/{id}",
        client.put(f"/v1/trades/{trade_id}", json=trade(trade_id, price="3444"), headers=headers),
    )


def test_every_write_endpoint_needs_an_exchange_key(api):
    owner = exchange_key(api.engine, "BJCX")
    push(api, owner, [trade("T1")])
    keys = {
        None: 401,
        "bcpi_not_a_key": 401,
        role_key(api.engine, "read"): 403,
        role_key(api.engine, "admin"): 403,
    }
    for key, status in keys.items():
        for endpoint, answer in _write_endpoints(api, key):
            assert answer.status_code == status, (endpoint, key)
            assert set(answer.json()) == {"error", "detail"}
    assert stored_trades(api.engine)["T1"].price == 3300.0


def test_an_exchange_cannot_write_cancel_or_amend_another_exchanges_trades(api):
    bjcx = exchange_key(api.engine, "BJCX")
    cbeex = exchange_key(api.engine, "CBEEX")
    push(api, bjcx, [trade("T1")])

    # cancel and amend of BJCX's T1 with CBEEX's key: unknown to CBEEX
    cancel = api.delete("/v1/trades/T1", headers={"X-API-Key": cbeex})
    assert cancel.status_code == 404
    amend = api.put("/v1/trades/T1", json=trade("T1", price="1"), headers={"X-API-Key": cbeex})
    assert amend.status_code == 404
    assert api.get("/v1/trades/T1", headers={"X-API-Key": cbeex}).status_code == 404
    in_batch = push(
        api,
        cbeex,
        [{"trade_id": "T1", "action": "cancel"}, trade("T1", action="amend", price="3301")],
    ).json()
    assert [r["code"] for r in in_batch["rejections"]] == ["unknown_trade", "unknown_trade"]

    # rows naming another exchange refuse the whole batch, in every format
    for fmt in ("csv", "json", "parquet"):
        named = push(api, cbeex, [{**trade("X1"), "exchange": "BJCX"}], fmt)
        assert named.status_code == 403, fmt
    put_named = api.put(
        "/v1/trades/T1", json={**trade("T1"), "exchange": "BJCX"}, headers={"X-API-Key": cbeex}
    )
    assert put_named.status_code == 403

    bjcx_trades = stored_trades(api.engine, "BJCX")
    assert (bjcx_trades["T1"].price, bjcx_trades["T1"].status) == (3300.0, "active")
    assert stored_trades(api.engine, "CBEEX") == {}

    # naming its own exchange is fine, and the same trade_id is a different trade there
    own = push(api, cbeex, [{**trade("T1", price="3500"), "exchange": "CBEEX"}])
    assert own.json()["accepted"] == 1
    assert stored_trades(api.engine, "CBEEX")["T1"].price == 3500.0
    assert stored_trades(api.engine, "BJCX")["T1"].price == 3300.0


def test_rotation_revokes_the_old_key(api, database_url):
    runner = CliRunner()
    added = runner.invoke(
        cli, ["exchanges", "add", "BJCX", "--name", "B", "--database-url", database_url]
    )
    assert added.exit_code == 0, added.output
    old = added.stdout.strip()
    assert old.startswith("bcpi_") and "\n" not in old and old not in added.stderr
    assert push(api, old, [trade("T1")]).status_code == 200

    rotated = runner.invoke(
        cli, ["exchanges", "rotate-key", "BJCX", "--database-url", database_url]
    )
    assert rotated.exit_code == 0, rotated.output
    new = rotated.stdout.strip()
    assert new != old and "revoked" in rotated.stderr
    assert push(api, old, [trade("T2")]).status_code == 401
    assert push(api, new, [trade("T2")]).status_code == 200

    for role in ("admin", "read"):
        created = runner.invoke(
            cli, ["keys", "create", "--role", role, "--database-url", database_url]
        )
        assert created.exit_code == 0
        key = created.stdout.strip()
        with session_scope(api.engine) as session:
            row = session.scalar(
                select(models.ApiKey).where(models.ApiKey.key_hash == hash_key(key))
            )
            assert (row.role, row.exchange_id) == (role, None)
    refused = runner.invoke(
        cli, ["keys", "create", "--role", "exchange", "--database-url", database_url]
    )
    assert refused.exit_code == 2 and refused.stdout == ""
    missing = runner.invoke(
        cli, ["exchanges", "rotate-key", "NOPE", "--database-url", database_url]
    )
    assert missing.exit_code == 2 and missing.stdout == ""

    admin = role_key(api.engine, "admin")
    revoke = runner.invoke(cli, ["keys", "revoke", admin[:12], "--database-url", database_url])
    assert revoke.exit_code == 0
    assert api.get("/v1/feeds/health", headers={"X-API-Key": admin}).status_code == 401


def test_keys_are_stored_only_as_hashes_and_never_logged(api, caplog):
    caplog.set_level(logging.DEBUG)
    key = exchange_key(api.engine, "BJCX")
    push(api, key, [trade("T1")])
    push(api, "bcpi_wrong_" + key[11:], [trade("T2")])
    api.get("/v1/feeds/health", headers={"Authorization": f"Bearer {key}"})
    assert key not in caplog.text and key[12:] not in caplog.text
    with session_scope(api.engine) as session:
        rows = session.scalars(select(models.ApiKey)).all()
        stored = [str(getattr(r, c.key)) for r in rows for c in models.ApiKey.__table__.columns]
    assert not any(key in value or key[12:] in value for value in stored)
    assert hash_key(key) in stored


def test_role_aliases_for_other_routes(engine, database_url):
    probe = FastAPI()
    probe.state.settings = Settings(database_url=database_url)
    probe.state.sessions = session_factory(engine)
    install_error_handlers(probe)

    @probe.get("/read")
    def read(principal: ReaderPrincipal) -> dict:
        return {"role": principal.role}

    @probe.get("/maybe")
    def maybe(principal: OptionalReader) -> dict:
        return {"role": principal.role if principal else None}

    @probe.get("/admin")
    def admin(principal: AdminPrincipal) -> dict:
        return {"role": principal.role}

    @probe.get("/exchange")
    def exchange(principal: ExchangePrincipal) -> dict:
        return {"code": principal.exchange_code, "key": principal.key_id}

    keys = {
        "read": role_key(engine, "read"),
        "admin": role_key(engine, "admin"),
        "exchange": exchange_key(engine, "BJCX"),
    }
    client = TestClient(probe)

    def get(path, key=None):
        return client.get(path, headers={"Authorization": f"Bearer {key}"} if key else {})

    assert get("/maybe").json() == {"role": None}
    assert get("/maybe", keys["read"]).json() == {"role": "read"}
    assert get("/maybe", "bcpi_unknown").status_code == 401
    assert get("/read").status_code == 401
    assert {get("/read", k).json()["role"] for k in keys.values()} == set(keys)
    assert get("/admin", keys["admin"]).status_code == 200
    assert get("/admin", keys["read"]).status_code == 403
    assert get("/exchange", keys["exchange"]).json()["code"] == "BJCX"
    assert get("/exchange", keys["admin"]).status_code == 403

    probe.state.settings = Settings(database_url=database_url, require_read_key=True)
    assert get("/maybe").status_code == 401
    assert get("/maybe", keys["read"]).json() == {"role": "read"}

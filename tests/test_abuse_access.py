"""Every endpoint × every caller that should not reach it: refused, and nothing changed.

The endpoints are enumerated from the application's routes (those in the OpenAPI document
and those outside it: documentation pages, the dashboard, static files), so a new endpoint
without an access rule in ``RULES`` fails ``test_every_route_has_an_access_rule``.
Callers: no key, an unknown key, a malformed key, a revoked key of each role, a read key,
an admin key, exchange A's key and exchange B's key; each key sent both as
``Authorization: Bearer`` and as ``X-API-Key``. Read endpoints are checked with
``require_read_key`` on (anonymous reads refused) and, for anonymous callers, off.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select

from store import models
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from tests.support_api import (
    EXCHANGE_A,
    OWN_TRADES,
    Keys,
    app_for,
    issue_keys,
    own_trade_rows,
    seed_history,
)

PUBLIC, READ, ADMIN, EXCHANGE, OWN_TRADE = "public", "read", "admin", "exchange", "own trade"
METRICS = "metrics"
FEED = "feed"  # an operator's key (every exchange) or an exchange's key (its own only)
OWN_BATCH = "own batch"  # an operator's key (any batch) or the exchange's key (its own only)
RULES = {
    # Documentation, the dashboard and its assets, and the probes.
    ("GET", "/openapi.json"): PUBLIC,
    ("HEAD", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("HEAD", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("HEAD", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("HEAD", "/redoc"): PUBLIC,
    ("GET", "/"): PUBLIC,
    ("*", "/static"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    # Published data: any valid key (and anonymous callers unless require_read_key).
    ("GET", "/v1/commodities"): READ,
    ("GET", "/v1/calendar"): READ,
    ("GET", "/v1/indices"): READ,
    ("GET", "/v1/indices/{code}"): READ,
    ("GET", "/v1/indices/{code}/series"): READ,
    ("GET", "/v1/indices/{code}/latest"): READ,
    ("GET", "/v1/indices/{code}/vintages"): READ,
    ("GET", "/v1/indices/{code}/explain"): READ,
    ("GET", "/v1/indices/{code}/weights"): READ,
    ("GET", "/v1/assessments/{commodity}/series"): READ,
    ("GET", "/v1/corrections"): READ,
    ("GET", "/v1/alerts"): READ,
    ("GET", "/v1/changes"): READ,
    ("GET", "/v1/stream"): READ,
    ("GET", "/v1/formulas/{formula}"): READ,
    ("GET", "/v1/methodology"): READ,
    ("GET", "/v1/methodology/{version}"): READ,
    ("GET", "/v1/indices/{code}/metadata"): READ,
    ("GET", "/v1/assessments/{commodity}/metadata"): READ,
    ("GET", "/v1/series"): READ,
    ("GET", "/sdmx/v2/data/{context}/{agency_id}/{resource_id}/{version}/{key}"): READ,
    ("GET", "/sdmx/v2/data/{context}/{agency_id}/{resource_id}/{version}"): READ,
    ("GET", "/sdmx/v2/structure/{structure_type}/{agency_id}/{resource_id}/{version}"): READ,
    ("GET", "/sdmx/v2/structure/{structure_type}"): READ,
    ("GET", "/sdmx/2.1/data/{flow_ref}/{key}"): READ,
    ("GET", "/sdmx/2.1/data/{flow_ref}"): READ,
    ("GET", "/sdmx/2.1/{resource}/{agency_id}/{resource_id}/{version}"): READ,
    ("GET", "/sdmx/2.1/{resource}/{agency_id}/{resource_id}"): READ,
    ("GET", "/sdmx/2.1/{resource}"): READ,
    # Prometheus: an admin or metrics key.
    ("GET", "/metrics"): METRICS,
    # Operations: admin keys only.
    ("GET", "/v1/ops/jobs"): ADMIN,
    ("GET", "/v1/feeds/health"): FEED,
    ("GET", "/v1/feeds/rejections"): FEED,
    ("GET", "/v1/batches/{batch_id}"): OWN_BATCH,
    ("GET", "/v1/audit/operator-log"): ADMIN,
    # Trades: an exchange key, for its own exchange's trades only.
    ("POST", "/v1/trades"): EXCHANGE,
    ("GET", "/v1/trades/{trade_id}"): OWN_TRADE,
    ("PUT", "/v1/trades/{trade_id}"): OWN_TRADE,
    ("DELETE", "/v1/trades/{trade_id}"): OWN_TRADE,
}
# A request each endpoint would grant an entitled caller.
SAMPLES = {
    "/openapi.json": "/openapi.json",
    "/docs": "/docs",
    "/docs/oauth2-redirect": "/docs/oauth2-redirect",
    "/redoc": "/redoc",
    "/": "/",
    "/static": "/static/vendor/echarts/VERSION",
    "/healthz": "/healthz",
    "/readyz": "/readyz",
    "/metrics": "/metrics",
    "/v1/commodities": "/v1/commodities",
    "/v1/calendar": "/v1/calendar?year=2025",
    "/v1/indices": "/v1/indices",
    "/v1/indices/{code}": "/v1/indices/BCPI",
    "/v1/indices/{code}/series": "/v1/indices/BCPI/series",
    "/v1/indices/{code}/latest": "/v1/indices/BCPI/latest",
    "/v1/indices/{code}/vintages": "/v1/indices/BCPI/vintages?date=2025-01-06",
    "/v1/indices/{code}/explain": "/v1/indices/BCPI/explain?date=2025-01-06",
    "/v1/indices/{code}/weights": "/v1/indices/BCPI/weights?effective=2025-01-06",
    "/v1/assessments/{commodity}/series": "/v1/assessments/REBAR/series",
    "/v1/corrections": "/v1/corrections",
    "/v1/alerts": "/v1/alerts",
    "/v1/changes": "/v1/changes?updated_after=2000-01-01T00:00:00Z",
    "/v1/stream": "/v1/stream?limit=1",
    "/v1/formulas/{formula}": "/v1/formulas/laspeyres?commodities=REBAR,HRC",
    "/v1/methodology": "/v1/methodology",
    "/v1/methodology/{version}": "/v1/methodology/2025.2",
    "/v1/ops/jobs": "/v1/ops/jobs",
    "/v1/audit/operator-log": "/v1/audit/operator-log",
    "/v1/feeds/health": "/v1/feeds/health?date=2025-01-06",
    "/v1/feeds/rejections": "/v1/feeds/rejections?date=2025-01-06",
    "/v1/batches/{batch_id}": "/v1/batches/{batch_id}",  # the batch exchange A pushed
    "/v1/indices/{code}/metadata": "/v1/indices/BCPI/metadata",
    "/v1/assessments/{commodity}/metadata": "/v1/assessments/REBAR/metadata",
    "/v1/series": "/v1/series?codes=BCPI,BCPI-AGR",
    "/sdmx/v2/data/{context}/{agency_id}/{resource_id}/{version}/{key}": (
        "/sdmx/v2/data/dataflow/BCPI/INDICES/1.0/D.BCPI?lastNObservations=1"
    ),
    "/sdmx/v2/data/{context}/{agency_id}/{resource_id}/{version}": (
        "/sdmx/v2/data/dataflow/BCPI/INDICES/1.0?lastNObservations=1"
    ),
    "/sdmx/v2/structure/{structure_type}/{agency_id}/{resource_id}/{version}": (
        "/sdmx/v2/structure/dataflow/BCPI/INDICES/1.0?references=all"
    ),
    "/sdmx/v2/structure/{structure_type}": "/sdmx/v2/structure/codelist",
    "/sdmx/2.1/data/{flow_ref}/{key}": "/sdmx/2.1/data/BCPI,INDICES,1.0/D.BCPI",
    "/sdmx/2.1/data/{flow_ref}": "/sdmx/2.1/data/INDICES?startPeriod=2025-01-06",
    "/sdmx/2.1/{resource}/{agency_id}/{resource_id}/{version}": (
        "/sdmx/2.1/dataflow/BCPI/INDICES/latest?references=all"
    ),
    "/sdmx/2.1/{resource}/{agency_id}/{resource_id}": "/sdmx/2.1/datastructure/BCPI/INDICES",
    "/sdmx/2.1/{resource}": "/sdmx/2.1/codelist",
    "/v1/trades": "/v1/trades",
    "/v1/trades/{trade_id}": {"GET": "A-1", "PUT": "A-2", "DELETE": "A-3"},
}
CALLERS = (
    "anonymous",
    "unknown",
    "malformed",
    "revoked_exchange",
    "revoked_admin",
    "revoked_read",
    "read",
    "admin",
    "exchange",
    "other_exchange",
)
UNKNOWN_KEY = "bcpi_" + "x" * 43
MALFORMED_KEY = "bcpi_ключ"


def expected(rule: str, caller: str, *, read_key_required: bool = True) -> set[int] | None:
    """The refusal statuses for ``caller`` (None: it may reach the endpoint)."""
    if rule == PUBLIC:
        return None
    invalid = caller in ("unknown", "malformed") or caller.startswith("revoked")
    if caller == "anonymous":
        return None if rule == READ and not read_key_required else {401}
    if invalid:
        return {401}
    if rule == READ:
        return None
    if rule == FEED:
        return {403} if caller == "read" else None
    if rule == OWN_BATCH:
        return {403} if caller == "read" else {404} if caller == "other_exchange" else None
    if rule in (ADMIN, METRICS):
        return None if caller == "admin" else {403}
    if caller in ("read", "admin"):
        return {403}
    if rule == OWN_TRADE and caller == "other_exchange":
        return {404}  # another exchange's trade does not exist for this key
    return None


def routes(app) -> list[tuple[str, str]]:
    found = []
    for context in iter_route_contexts(app.routes):
        for method in sorted(context.methods or {"*"}):
            found.append((method, re.sub(r":\w+}", "}", context.path)))
    return found


@dataclass
class Arena:
    client: TestClient
    engine: object
    keys: Keys
    batch: int = 0
    """The batch exchange A pushed."""

    def key(self, caller: str) -> str | None:
        return {
            "anonymous": None,
            "unknown": UNKNOWN_KEY,
            "malformed": MALFORMED_KEY,
        }.get(caller, getattr(self.keys, caller, None))

    def call(self, method: str, path: str, caller: str, transport: str, serial: int):
        sample = SAMPLES[path]
        url = sample if isinstance(sample, str) else f"/v1/trades/{sample[method]}"
        url = url.replace("{batch_id}", str(self.batch))
        headers = {}
        key = self.key(caller)
        if key is not None and not key.isascii():
            key = key.encode()  # sent as its UTF-8 bytes
        if key is not None:
            if transport == "bearer":
                headers["Authorization"] = (
                    (b"Bearer " + key) if isinstance(key, bytes) else f"Bearer {key}"
                )
            else:
                headers["X-API-Key"] = key
        if path == "/v1/stream":
            headers["Last-Event-ID"] = "0"
        body = None
        if method == "POST":
            body = [{**own_trade_rows()[0], "trade_id": f"P-{caller}-{transport}-{serial}"}]
        elif method == "PUT":
            body = {**own_trade_rows()[1], "price": "3310"}
        if method == "*":
            method = "GET"
        return self.client.request(method, url, headers=headers, json=body)


def own_trades(engine) -> dict[str, tuple]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(models.Trade.trade_id, models.Trade.status, models.Trade.price_raw)
            .join(models.Exchange)
            .where(models.Exchange.code == EXCHANGE_A)
        ).all()
    return {row.trade_id: (row.status, row.price_raw) for row in rows}


def all_trade_ids(engine) -> set[str]:
    with session_scope(engine) as session:
        return set(session.scalars(select(models.Trade.trade_id)))


@pytest.fixture
def arena(database_url, catalogue, tmp_path):
    engine = make_engine(database_url)
    prepare_database(engine, catalogue)
    seed_history(engine, catalogue, tmp_path / "feeds")
    keys = issue_keys(engine)
    app = app_for(database_url, tmp_path, require_read_key=True)
    with TestClient(app) as client:
        pushed = client.post(
            "/v1/trades", json=own_trade_rows(), headers={"X-API-Key": keys.exchange}
        )
        assert pushed.json()["accepted"] == len(OWN_TRADES)
        yield Arena(client, engine, keys, pushed.json()["batch_id"])
    engine.dispose()


def test_every_route_has_an_access_rule(arena):
    found = set(routes(arena.client.app))
    assert found - set(RULES) == set(), "routes without an access rule in RULES"
    assert set(RULES) - found == set(), "rules for routes the app no longer has"
    assert {path for _, path in found} <= set(SAMPLES)


def test_every_endpoint_refuses_every_caller_that_should_not_reach_it(arena, capsys):
    before, trade_ids = own_trades(arena.engine), all_trade_ids(arena.engine)
    attempts, refused, wrong = Counter(), Counter(), []
    serial = 0
    for method, path in routes(arena.client.app):
        rule = RULES[(method, path)]
        for caller in CALLERS:
            refusal = expected(rule, caller)
            if refusal is None:
                continue
            for transport in ("bearer", "x-api-key") if caller != "anonymous" else ("none",):
                serial += 1
                answer = arena.call(method, path, caller, transport, serial)
                attempts[rule] += 1
                if answer.status_code in refusal:
                    refused[rule] += 1
                else:
                    wrong.append(f"{method} {path} as {caller} ({transport}): {answer.status_code}")
    # Exchange B may push its own trades, never rows that name exchange A.
    cross = [{**own_trade_rows()[0], "trade_id": "B-as-A", "exchange": EXCHANGE_A}]
    answer = arena.client.post(
        "/v1/trades", json=cross, headers={"X-API-Key": arena.keys.other_exchange}
    )
    attempts[EXCHANGE] += 1
    refused[EXCHANGE] += answer.status_code == 403
    if answer.status_code != 403:
        wrong.append(f"POST /v1/trades as exchange B naming exchange A: {answer.status_code}")

    total, denied = sum(attempts.values()), sum(refused.values())
    with capsys.disabled():
        print(
            f"\naccess matrix: {len(RULES)} endpoints, {total} attempts by callers that should"
            f" not reach them, {denied} refused ({100 * denied / total:.1f}%); by rule:"
            f" {dict((rule, f'{refused[rule]}/{n}') for rule, n in attempts.items())}"
        )
    assert not wrong, "\n".join(wrong)
    assert own_trades(arena.engine) == before  # nothing amended, cancelled or added
    assert all_trade_ids(arena.engine) == trade_ids


def test_entitled_callers_do_reach_every_endpoint(arena):
    # The refusals above are not a server that refuses everyone.
    wrong = []
    for method, path in routes(arena.client.app):
        rule = RULES[(method, path)]
        for caller in ("anonymous", "read", "admin", "exchange", "other_exchange"):
            if expected(rule, caller) is not None:
                continue
            answer = arena.call(method, path, caller, "bearer", 0)
            if not 200 <= answer.status_code < 300:
                wrong.append(
                    f"{method} {path} as {caller}: {answer.status_code} {answer.text[:100]}"
                )
    assert not wrong, "\n".join(wrong)
    status = own_trades(arena.engine)
    assert status["A-2"] == ("active", 3310.0) and status["A-3"][0] == "cancelled"


def test_anonymous_reads_when_no_read_key_is_required(database_url, catalogue, tmp_path):
    engine = make_engine(database_url)
    prepare_database(engine, catalogue)
    keys = issue_keys(engine)
    with TestClient(app_for(database_url, tmp_path)) as client:
        for (method, path), rule in RULES.items():
            if rule != READ or path == "/v1/stream":
                continue
            for caller in ("anonymous", "revoked_read", "revoked_exchange"):
                key = getattr(keys, caller, None)
                headers = {"X-API-Key": key} if key else {}
                answer = client.request(method, SAMPLES[path], headers=headers)
                refusal = expected(rule, caller, read_key_required=False)
                if refusal is None:
                    assert answer.status_code not in (401, 403), (path, caller)
                else:
                    assert answer.status_code in refusal, (path, caller, answer.status_code)
    engine.dispose()

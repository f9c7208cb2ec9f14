"""A query parameter an endpoint does not take is a 400 naming it and what is taken.

Every ``GET /v1`` route is found by walking the application's routes, so a route added
later is covered without a list to maintain. What each route takes is read independently
from the OpenAPI document (its query parameters), with ``format``, which every route
takes."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi import APIRouter, Query
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.strict import install_strict
from core.settings import Settings
from store import models
from store.db import session_scope
from store.reference import create_key
from tests.publication_data import T0, level, publish_index, weekdays

DAYS = weekdays(dt.date(2025, 3, 3), 5)


def _app(database_url, tmp_path, **settings):
    return create_app(
        Settings(database_url=database_url, archive_dir=tmp_path / "archive", **settings)
    )


@pytest.fixture
def app(engine, database_url, tmp_path):
    publish_index(engine, "BCPI", {day: level(day) for day in DAYS}, now=T0)
    app = _app(database_url, tmp_path)
    install_strict(app)  # a no-op once the application installs it itself
    return app


@pytest.fixture
def client(app):
    with TestClient(app) as client:
        yield client


def _get_routes(app) -> list[str]:
    """The path of every GET route under /v1, as the OpenAPI document writes it."""
    paths = set()
    for context in iter_route_contexts(app.routes):
        if context.path and context.path.startswith("/v1/") and "GET" in (context.methods or ()):
            paths.add(re.sub(r":\w+}", "}", context.path))
    return sorted(paths)


def _declared(document: dict, path: str) -> set[str]:
    parameters = document["paths"][path]["get"].get("parameters", [])
    return {p["name"] for p in parameters if p["in"] == "query"}


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: "BCPI" if m[1] == "code" else "x", path)


def _misspelt(declared: set[str]) -> str:
    name = min(declared, default="start")
    wrong = name[1] + name[0] + name[2:] if len(name) > 1 else name + name
    return wrong if wrong not in declared else "strat"


def test_every_get_route_refuses_a_misspelt_parameter(app, client):
    document = client.get("/openapi.json").json()
    routes = _get_routes(app)
    assert {"/v1/series", "/v1/indices/{code}/vintages", "/v1/commodities"} <= set(routes)
    for path in routes:
        declared = _declared(document, path)
        wrong = _misspelt(declared)
        answer = client.get(_concrete(path), params={wrong: "2025-03-03"})
        assert answer.status_code == 400, (path, answer.text)
        body = answer.json()
        assert body["error"] == "UnknownParameter", path
        [problem] = body["detail"]
        assert problem["field"] == wrong, path
        assert f"GET {path}" in re.sub(r":\w+}", "}", problem["message"]), path
        taken = problem["message"].split("it takes: ", 1)[1].split(", ")
        assert taken == sorted(declared | {"format"}), path


def test_declared_parameters_pass_on_every_get_route(app, client):
    """Each route's own parameters (with a value it may well refuse: then a 422 or 404,
    never the unknown-parameter 400)."""
    document = client.get("/openapi.json").json()
    for path in _get_routes(app):
        params = dict.fromkeys(_declared(document, path) | {"format"}, "0")
        answer = client.get(_concrete(path), params=params)
        if answer.status_code == 400:
            assert answer.json()["error"] != "UnknownParameter", (path, answer.text)


def test_several_unknown_parameters_are_named_together(client):
    answer = client.get("/v1/indices/BCPI/series", params={"strat": "1", "ned": "2"})
    assert answer.status_code == 400
    [problem] = answer.json()["detail"]
    assert problem["field"] == "strat, ned"
    assert "start" in problem["message"] and "end" in problem["message"]


def test_legitimate_parameters_still_work(client, engine):
    with session_scope(engine) as session:
        key = create_key(session, "read")
    first, last = DAYS[1].isoformat(), DAYS[3].isoformat()
    ok = [
        ("/v1/indices/BCPI/series", {"start": first, "end": last, "format": "csv"}),
        ("/v1/indices/BCPI/series", {"as_of": T0.isoformat(), "order": "desc", "limit": 2}),
        ("/v1/indices/BCPI/latest", {"as_of": T0.isoformat(), "status": "final"}),
        ("/v1/indices/BCPI/vintages", {"date": first}),
        ("/v1/indices/BCPI/vintages", {"start": first, "end": last, "format": "parquet"}),
        ("/v1/series", {"codes": "BCPI", "start": first, "format": "arrow"}),
        ("/v1/indices", {"format": "json"}),  # taken everywhere
        # Declared by a dependency, not by the endpoint: the read key in the URL.
        ("/v1/indices/BCPI/latest", {"api_key": key}),
        ("/v1/series", {"codes": "BCPI", "api_key": key}),
    ]
    for path, params in ok:
        answer = client.get(path, params=params)
        assert answer.status_code == 200, (path, params, answer.text)
    lines = client.get("/v1/indices/BCPI/series", params={"start": first, "end": last}).json()
    assert [p["date"] for p in lines["points"]] == [d.isoformat() for d in DAYS[1:4]]


def test_head_and_writes_are_checked_before_anything_runs(client, engine):
    assert client.head("/v1/indices", params={"fromat": "csv"}).status_code == 400
    answer = client.post("/v1/trades", params={"atomc": "true"}, json=[])
    assert answer.status_code == 400, answer.text
    assert answer.json()["detail"][0]["field"] == "atomc"
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(models.Trade)) == 0


def test_a_route_added_later_is_covered(engine, database_url, tmp_path):
    app = _app(database_url, tmp_path)
    added = APIRouter(prefix="/v1")

    @added.get("/added")
    def endpoint(wanted: int = Query(0)) -> dict:
        return {"wanted": wanted}

    app.include_router(added)
    install_strict(app)
    with TestClient(app) as client:
        assert client.get("/v1/added", params={"wanted": 3}).json() == {"wanted": 3}
        refused = client.get("/v1/added", params={"wnated": 3})
    assert refused.status_code == 400
    assert refused.json()["detail"][0]["message"].endswith("it takes: format, wanted")


def test_routes_outside_v1_are_not_checked(client):
    assert client.get("/healthz", params={"anything": "1"}).status_code == 200


def test_the_application_as_built_refuses_unknown_parameters(engine, database_url, tmp_path):
    with TestClient(_app(database_url, tmp_path)) as client:
        assert client.get("/v1/commodities", params={"foo": "1"}).status_code == 400

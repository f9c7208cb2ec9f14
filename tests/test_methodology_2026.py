"""Methodology 2026.1 ships beside the earlier versions: listed with its effective date,
in force from 1 December 2026 in a deployment that has published nothing, and without any
effect on the history before that day."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from core.methodology import registry
from core.settings import Settings
from publication.fixing import compute
from store import models
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from tests.calendar_support import SHANGHAI, fed, world
from tests.test_publication_restatement import LOOSE, published  # noqa: F401  (the fixture)

START, END = dt.date(2026, 11, 2), dt.date(2026, 12, 4)
EFFECTIVE = dt.date(2026, 12, 1)


def test_every_version_is_listed_with_its_effective_date(engine, database_url):
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        listed = client.get("/v1/methodology").json()
    effective = {v["version"]: v["effective_from"] for v in listed["versions"]}
    assert effective["2025.1"] == "2025-01-02"
    assert effective["2025.2"] == "2025-01-02"
    assert effective["2026.1"] == "2026-12-01"


def _current(url: str) -> dict:
    """{(kind, code, date): (value, inputs hash, methodology version)}, fixed values only."""
    engine = make_engine(url)
    out = {}
    with session_scope(engine) as session:
        for v, code in session.execute(
            select(models.IndexValue, models.IndexDefinition.code)
            .join(models.IndexDefinition)
            .where(models.IndexValue.superseded_at.is_(None))
        ):
            out[("index", code, v.date)] = (v.value, v.inputs_hash, v.methodology_version)
        for a, code in session.execute(
            select(models.Assessment, models.Commodity.code)
            .join(models.Commodity)
            .where(models.Assessment.superseded_at.is_(None))
        ):
            out[("assessment", code, a.date)] = (a.price, a.inputs_hash, a.methodology_version)
    engine.dispose()
    return out


def test_history_before_the_effective_date_is_what_the_earlier_version_publishes(tmp_path):
    (tmp_path / "world").mkdir()
    feeds = world(tmp_path / "world", START, END)
    now = dt.datetime.combine(END, dt.time(18), SHANGHAI)
    urls = {}
    for name in ("with", "without"):
        url = f"sqlite:///{tmp_path / name}.db"
        fed(url, tmp_path / name, feeds)
        if name == "without":
            registry.hold({"2026.1"})  # as if 2026.1 had never shipped
        engine = make_engine(url)
        with session_scope(engine) as session:
            compute(session, START, END, now=now)
        engine.dispose()
        registry.forget_adopted()
        urls[name] = url
    with_new, without = _current(urls["with"]), _current(urls["without"])
    before = {k: v for k, v in with_new.items() if k[2] < EFFECTIVE}
    assert before and before == {k: v for k, v in without.items() if k[2] < EFFECTIVE}
    assert {v[2] for v in before.values()} == {"2025.2"}
    after = {k: v for k, v in with_new.items() if k[2] >= EFFECTIVE}
    assert after and {v[2] for v in after.values()} == {"2026.1"}
    assert {v[2] for k, v in without.items() if k[2] >= EFFECTIVE} == {"2025.2"}


def test_a_deployment_running_its_own_version_holds_the_shipped_one(published):  # noqa: F811
    """A deployment whose own version has another base date (2025-12-30) and published
    values starts after the release ships 2026.1 (base 2025-01-02): 2026.1 is held, not a
    start refused, and the deployment goes on under its own version."""
    engine, catalogue, _, _ = published
    prepare_database(engine, catalogue)
    assert "2026.1" in registry.held()
    assert registry.in_force().version == LOOSE.version
    with session_scope(engine) as session:
        row = session.get(models.MethodologyVersion, "2026.1")
        assert (row.source, row.state) == ("shipped", "held")

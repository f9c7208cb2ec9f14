"""Adopting a methodology version: refused when it would change published values, accepted
from tomorrow, every act on the operator log, and with four eyes a forced adoption waits
for a second operator."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from cli.main import app as cli
from core.calendar import Calendar
from core.methodology import METHODOLOGY_DIR, in_force
from core.settings import Settings, get_settings
from store.bootstrap import prepare_database
from store.db import make_engine
from tests.feeds_support import role_key
from tests.publication_data import publish_index, weekdays

SHIPPED = (METHODOLOGY_DIR / "v2025.2.toml").read_text(encoding="utf-8")
DAYS = weekdays(dt.date(2026, 11, 23), 5)  # 23 to 27 November 2026
PUBLISHED_AT = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)


def version_file(tmp_path, version: str, effective: dt.date) -> tuple:
    """The shipped version with cotton's production value and price band changed."""
    text = (
        SHIPPED.replace('version = "2025.2"', f'version = "{version}"')
        .replace("effective_from = 2025-01-02", f"effective_from = {effective.isoformat()}")
        .replace('supersedes = "2025.1"\nchange = "calendar_correction"\n', "")
        .replace("production_value = 90.0", "production_value = 95.0", 1)
        .replace("price_band = [5000.0, 40000.0]", "price_band = [6000.0, 40000.0]", 1)
    )
    assert text.count(version) >= 1 and "production_value = 95.0" in text
    path = tmp_path / f"v{version}.toml"
    path.write_text(text, encoding="utf-8")
    return path, hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def deployment(database_url, catalogue, monkeypatch):
    monkeypatch.delenv("BCPI_FOUR_EYES", raising=False)
    get_settings.cache_clear()
    engine = make_engine(database_url)
    prepare_database(engine, catalogue)
    publish_index(engine, "BCPI", {d: 1000.0 + n for n, d in enumerate(DAYS)}, now=PUBLISHED_AT)
    yield engine, database_url
    get_settings.cache_clear()
    engine.dispose()


def bcpi(database_url: str, *args: str):
    return CliRunner().invoke(cli, [*args, "--database-url", database_url])


def log(database_url: str) -> list[dict]:
    result = bcpi(database_url, "audit", "operator-log")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_past_dated_version_is_refused_naming_what_it_would_change(deployment, tmp_path):
    engine, url = deployment
    past, _ = version_file(tmp_path, "2026.9", DAYS[2])
    refused = bcpi(url, "methodology", "adopt", str(past), "--operator", "alice")
    assert refused.exit_code == 2
    message = " ".join(refused.stderr.split())
    assert "3 published values of 1 indices (BCPI) from 2026-11-25 to 2026-11-27" in message
    assert "--force --reason" in message
    assert in_force(DAYS[2]).version == "2025.2"

    tomorrow = Calendar(in_force()).today() + dt.timedelta(days=1)
    later, digest = version_file(tmp_path, "2026.10", tomorrow)
    accepted = bcpi(url, "methodology", "adopt", str(later), "--operator", "alice")
    assert accepted.exit_code == 0, accepted.output
    assert digest in accepted.stderr

    acts = log(url)
    assert [(a["action"], a["operator"]) for a in acts] == [
        ("methodology.refused", "alice"),
        ("methodology.adopt", "alice"),
    ]
    assert acts[0]["details"]["version"] == "2026.9" and acts[0]["details"]["published"] == 3
    assert acts[1]["details"]["sha256"] == digest

    settings = Settings(database_url=url)
    with TestClient(create_app(settings)) as client:
        versions = client.get("/v1/methodology").json()["versions"]
        listed = {v["version"]: v for v in versions}
        assert listed["2026.10"]["sha256"] == digest
        assert listed["2026.10"]["effective_from"] == tomorrow.isoformat()
        assert listed["2026.1"]["in_force_today"] and not listed["2026.10"]["in_force_today"]
        assert not listed["2025.2"]["in_force_today"]
        assert "2026.9" not in listed
        document = client.get("/v1/methodology/2026.10")
        assert hashlib.sha256(document.content).hexdigest() == digest
        assert client.get("/v1/audit/operator-log").status_code == 401
        auditor = role_key(engine, "auditor")
        answer = client.get(
            "/v1/audit/operator-log", headers={"Authorization": f"Bearer {auditor}"}
        ).json()
        assert [a["action"] for a in answer["acts"]][:2] == [a["action"] for a in acts]
    verified = bcpi(url, "audit", "verify")
    assert verified.exit_code == 0, verified.output


def test_with_four_eyes_a_forced_adoption_waits_for_a_second_operator(
    deployment, tmp_path, monkeypatch
):
    _, url = deployment
    monkeypatch.setenv("BCPI_FOUR_EYES", "true")
    get_settings.cache_clear()
    past, digest = version_file(tmp_path, "2026.9", DAYS[2])
    forced = ["--force", "--reason", "band too wide", "--operator"]
    proposed = bcpi(url, "methodology", "adopt", str(past), *forced, "alice")
    assert proposed.exit_code == 0, proposed.output
    assert "proposal 1" in proposed.stderr and "bcpi approve 1" in proposed.stderr
    listed = bcpi(url, "methodology", "list")
    assert "2026.9" not in listed.stdout

    same = bcpi(url, "approve", "1", "--operator", "alice")
    assert same.exit_code == 2 and "second, different operator" in same.stderr
    approved = bcpi(url, "approve", "1", "--operator", "bob")
    assert approved.exit_code == 0, approved.output
    again = bcpi(url, "approve", "1", "--operator", "carol")
    assert again.exit_code == 2 and "already approved" in again.stderr

    listed = bcpi(url, "methodology", "list")
    assert "2026.9" in listed.stdout and digest in listed.stdout
    assert [(a["action"], a["operator"]) for a in log(url)] == [
        ("proposal.create", "alice"),
        ("proposal.approve", "bob"),
        ("methodology.adopt", "bob"),
    ]


def test_a_shipped_version_that_would_change_published_values_waits_for_adoption(
    deployment, tmp_path, monkeypatch
):
    from core.methodology import Version, registry

    _, url = deployment
    path, digest = version_file(tmp_path, "2026.9", DAYS[2])
    upgrade = Version.of(path.read_text(encoding="utf-8"), "shipped", str(path))
    shipped = {**registry.shipped(), "2026.9": upgrade}
    monkeypatch.setattr(registry, "shipped", lambda: shipped)
    registry.versions.cache_clear()
    try:
        listed = bcpi(url, "methodology", "list")  # the upgraded software starts
        assert listed.exit_code == 0, listed.output
        held = next(line for line in listed.stdout.splitlines() if "2026.9" in line)
        assert held.split()[2:4] == ["held", "shipped"] and digest in held
        assert in_force(DAYS[2]).version == "2025.2"

        refused = bcpi(url, "methodology", "adopt", str(path), "--operator", "alice")
        assert refused.exit_code == 2 and "3 published values" in refused.stderr
        forced = ["--force", "--reason", "the upgrade's correction", "--operator", "alice"]
        adopted = bcpi(url, "methodology", "adopt", str(path), *forced)
        assert adopted.exit_code == 0, adopted.output
        assert in_force(DAYS[2]).version == "2026.9"
        listed = bcpi(url, "methodology", "list")
        now = next(line for line in listed.stdout.splitlines() if "2026.9" in line)
        fields = now.split()
        position = fields.index("2026.9")
        assert fields[position : position + 4] == ["2026.9", "2026-11-25", "in_force", "adopted"]
    finally:
        registry.versions.cache_clear()

"""A methodology version put to consultation with its backtest, then withdrawn or adopted:
the dates, the refusals, the four-eyes path, the operator log, ``GET /v1/methodology`` and
the dashboard's methodology panel."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tomllib
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from cli.demo import run_pipeline
from cli.main import app as cli
from core.calendar import Calendar
from core.errors import AdoptionRefused
from core.methodology import METHODOLOGY_DIR, Version, load_methodology
from core.settings import Settings, get_settings
from publication.proposal import decide, propose
from store import models
from store.db import make_engine, session_scope
from store.operator_log import Operator
from tests.publication_server import serve
from tests.test_dashboard import CHROMIUM, REQUIRE, Browser

START = dt.date(2025, 1, 2)
DAYS = 20
V2026_1 = (METHODOLOGY_DIR / "v2026.1.toml").read_text(encoding="utf-8")


def beijing_today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()


def version_file(tmp_path, version: str, effective: dt.date):
    """2026.1's rules as a new version of its own, correcting none."""
    lines = [
        line
        for line in V2026_1.splitlines(keepends=True)
        if not line.startswith(("supersedes =", "change ="))
    ]
    text = (
        "".join(lines)
        .replace('version = "2026.1"', f'version = "{version}"')
        .replace("effective_from = 2026-12-01", f"effective_from = {effective.isoformat()}")
    )
    assert f'version = "{version}"' in text and f"effective_from = {effective}" in text
    path = tmp_path / f"v{version}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def deployment(database_url, catalogue, tmp_path, monkeypatch):
    """20 weekdays from 2 January 2025 published under 2025.2."""
    monkeypatch.chdir(tmp_path)  # the demo archives under ./var/archive
    monkeypatch.delenv("BCPI_FOUR_EYES", raising=False)
    get_settings.cache_clear()
    engine = make_engine(database_url)
    calendar = Calendar(load_methodology("2025.2"))
    run_pipeline(engine, catalogue, tmp_path / "feeds", days=DAYS, start=START, calendar=calendar)
    yield engine, database_url
    engine.dispose()
    get_settings.cache_clear()


def bcpi(database_url: str, *args):
    return CliRunner().invoke(cli, [*map(str, args), "--database-url", database_url])


def log(database_url: str) -> list[dict]:
    result = bcpi(database_url, "audit", "operator-log")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def listed(database_url: str) -> dict:
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        answer = client.get("/v1/methodology")
        assert answer.status_code == 200, answer.text
        return answer.json()


def message(result) -> str:
    return " ".join(result.stderr.split())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_consultation_from_proposal_to_adoption(deployment, tmp_path):
    _, url = deployment
    path = version_file(tmp_path, "2027.1", dt.date(2027, 3, 1))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    today = beijing_today()
    closes = today + dt.timedelta(days=28)

    proposed = bcpi(
        url, "methodology", "propose", path, "--consultation-days", "28", "--operator", "alice"
    )
    assert proposed.exit_code == 0, proposed.output
    assert f"proposal 1: consultation on methodology 2027.1 open from {today}" in message(proposed)
    assert f"closes {closes}" in message(proposed)
    assert "BCPI-FER" in proposed.stdout  # the backtest's table

    answer = listed(url)
    (proposal,) = answer["proposals"]
    assert proposal["version"] == "2027.1" and proposal["status"] == "consultation"
    assert proposal["open"] is True and proposal["decided_at"] is None
    assert (proposal["opens"], proposal["closes"]) == (today.isoformat(), closes.isoformat())
    assert proposal["effective_from"] == "2027-03-01" and proposal["sha256"] == digest
    assert proposal["changelog"] == tomllib.loads(path.read_text())["changelog"]
    assert "2027.1" not in {v["version"] for v in answer["versions"]}
    shipped = {v["version"]: v for v in answer["versions"]}
    assert shipped["2026.1"]["changelog"] == proposal["changelog"]
    assert shipped["2025.2"]["changelog"] == []

    # The backtest it was proposed with is the one `bcpi backtest` gives.
    out = tmp_path / "backtest"
    alone = bcpi(url, "backtest", "--methodology", path, "--out", out)
    assert alone.exit_code == 0, alone.output
    backtest = proposal["backtest"]
    assert backtest["version"] == "2027.1" and backtest["start"] == START.isoformat()
    assert pl.DataFrame(backtest["indices"]).equals(pl.read_csv(out / "summary.csv"))
    composite = next(s for s in backtest["indices"] if s["index"] == "BCPI")
    with TestClient(create_app(Settings(database_url=url))) as client:
        published = client.get("/v1/indices/BCPI/series").json()["points"]
        document = client.get("/v1/methodology/2027.1")
    assert composite["days_compared"] == len(published)
    assert backtest["end"] == published[-1]["date"]
    assert hashlib.sha256(document.content).hexdigest() == digest

    listing = bcpi(url, "methodology", "list")
    assert "? 2027.1" in listing.stdout and f"{today}..{closes}" in listing.stdout

    early = bcpi(url, "methodology", "decide", "2027.1", "adopt", "--reason", "agreed")
    assert early.exit_code == 2
    assert f"closes on {closes}" in message(early) and "--force" in message(early)
    adopted = bcpi(
        url, "methodology", "decide", "2027.1", "adopt", "--force",
        "--reason", "the comments agree", "--operator", "bob",
    )  # fmt: skip
    assert adopted.exit_code == 0, adopted.output
    assert "methodology 2027.1 adopted, effective 2027-03-01" in message(adopted)

    answer = listed(url)
    (proposal,) = answer["proposals"]
    assert proposal["status"] == "adopted" and proposal["open"] is False
    assert proposal["decision_reason"] == "the comments agree" and proposal["decided_at"]
    versions = {v["version"]: v for v in answer["versions"]}
    assert versions["2027.1"]["sha256"] == digest
    assert versions["2027.1"]["changelog"] == proposal["changelog"]
    acts = log(url)
    assert [(a["action"], a["operator"]) for a in acts] == [
        ("methodology.propose", "alice"),
        ("methodology.decide", "bob"),
        ("methodology.adopt", "bob"),
    ]
    assert acts[0]["details"]["closes"] == closes.isoformat()
    assert acts[0]["details"]["backtest"] == backtest
    assert acts[1]["details"] == {
        "proposal": 1,
        "version": "2027.1",
        "decision": "adopt",
        "forced": True,
    }
    assert bcpi(url, "audit", "verify").exit_code == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_withdrawn_consultation_is_closed(deployment, tmp_path):
    _, url = deployment
    path = version_file(tmp_path, "2027.1", dt.date(2027, 3, 1))
    assert bcpi(url, "methodology", "propose", path, "--consultation-days", "10").exit_code == 0
    withdrawn = bcpi(url, "methodology", "decide", "2027.1", "withdraw", "--reason", "objections")
    assert withdrawn.exit_code == 0, withdrawn.output
    (proposal,) = listed(url)["proposals"]
    assert proposal["status"] == "withdrawn" and proposal["open"] is False
    assert proposal["decision_reason"] == "objections"
    again = bcpi(url, "methodology", "decide", "2027.1", "adopt", "--force", "--reason", "x")
    assert again.exit_code == 2
    assert "no open consultation on methodology '2027.1' (open: none)" in message(again)
    assert [a["action"] for a in log(url)] == ["methodology.propose", "methodology.decide"]
    assert "2027.1" not in bcpi(url, "methodology", "list").stdout


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_from_the_closing_date_adoption_needs_no_force(deployment, tmp_path):
    engine, _ = deployment
    opened = dt.datetime(2026, 12, 4, 2, 0, tzinfo=dt.UTC)  # 10:00 in Beijing
    on_closing_day = opened + dt.timedelta(days=7)
    alice, bob = Operator("alice"), Operator("bob")
    future = Version.of(
        version_file(tmp_path, "2027.1", dt.date(2027, 3, 1)).read_text(), "adopted"
    )
    past = Version.of(version_file(tmp_path, "2026.7", START).read_text(), "adopted")
    with session_scope(engine) as session:
        for version in (future, past):
            propose(session, version, alice, days=7, backtest=None, now=opened)
    with session_scope(engine) as session, pytest.raises(AdoptionRefused, match="2026-12-11"):
        decide(session, "2027.1", "adopt", bob, reason="r", now=on_closing_day - dt.timedelta(1))
    with session_scope(engine) as session:
        decided = decide(session, "2027.1", "adopt", bob, reason="agreed", now=on_closing_day)
        assert decided.consultation.status == "adopted"
        assert decided.outcome.result.version == "2027.1"
    # After its closing date a version that would restate published values still needs
    # --force, as `bcpi methodology adopt` does.
    with session_scope(engine) as session, pytest.raises(AdoptionRefused) as refused:
        decide(session, "2026.7", "adopt", bob, reason="agreed", now=on_closing_day)
    assert "published values of 15 indices" in refused.value.message


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_closed_consultation_on_a_past_dated_version_restates_only_when_forced(
    deployment, tmp_path
):
    engine, url = deployment
    path = version_file(tmp_path, "2026.7", START)
    assert bcpi(url, "methodology", "propose", path, "--consultation-days", "3").exit_code == 0
    with session_scope(engine) as session:  # three days pass
        consultation = session.get(models.Proposal, 1)
        yesterday = beijing_today() - dt.timedelta(days=1)
        consultation.payload = {**consultation.payload, "closes": yesterday.isoformat()}
    assert listed(url)["proposals"][0]["open"] is False

    refused = bcpi(url, "methodology", "decide", "2026.7", "adopt", "--reason", "agreed")
    assert refused.exit_code == 2
    assert "published values of 15 indices" in message(refused)
    assert "bcpi methodology decide 2026.7 adopt --force" in message(refused)
    forced = bcpi(url, "methodology", "decide", "2026.7", "adopt", "--force", "--reason", "agreed")
    assert forced.exit_code == 0, forced.output
    restated = int(message(forced).split("restated under it: ")[1].split()[0])
    with TestClient(create_app(Settings(database_url=url))) as client:
        notices = client.get("/v1/corrections").json()["corrections"]
    assert restated == len(notices) > 0
    assert {n["reason"] for n in notices} == {"methodology_change"}
    assert [a["action"] for a in log(url)] == [
        "methodology.propose",
        "methodology.refused",
        "methodology.decide",
        "methodology.adopt",
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_with_four_eyes_a_forced_adoption_waits_for_a_second_operator(
    deployment, tmp_path, monkeypatch
):
    _, url = deployment
    monkeypatch.setenv("BCPI_FOUR_EYES", "true")
    get_settings.cache_clear()
    path = version_file(tmp_path, "2027.1", dt.date(2027, 3, 1))
    propose_ = ["methodology", "propose", path, "--consultation-days", "30", "--operator", "alice"]
    assert bcpi(url, *propose_).exit_code == 0
    decided = bcpi(
        url, "methodology", "decide", "2027.1", "adopt", "--force",
        "--reason", "urgent", "--operator", "alice",
    )  # fmt: skip
    assert decided.exit_code == 0, decided.output
    assert "adoption proposed (proposal 2)" in message(decided)
    assert listed(url)["proposals"][0]["status"] == "adopting"
    consultation = bcpi(url, "approve", "1", "--operator", "bob")
    assert consultation.exit_code == 2 and "is a consultation" in message(consultation)
    approved = bcpi(url, "approve", "2", "--operator", "bob")
    assert approved.exit_code == 0, approved.output
    answer = listed(url)
    assert answer["proposals"][0]["status"] == "adopted"
    assert "2027.1" in {v["version"] for v in answer["versions"]}
    assert [(a["action"], a["operator"]) for a in log(url)] == [
        ("methodology.propose", "alice"),
        ("methodology.decide", "alice"),
        ("proposal.create", "alice"),
        ("proposal.approve", "bob"),
        ("methodology.adopt", "bob"),
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_bad_input_is_refused_naming_what_is_allowed(deployment, tmp_path):
    _, url = deployment
    path = version_file(tmp_path, "2027.1", dt.date(2027, 3, 1))
    notes = tmp_path / "notes.toml"
    notes.write_text('title = "not a methodology"\n', encoding="utf-8")
    shipped = METHODOLOGY_DIR / "v2026.1.toml"
    refusals = [
        (
            ["methodology", "propose", path, "--consultation-days", "0"],
            "error: consultation_days: a consultation runs 1 to 366 days, not 0",
        ),
        (["methodology", "propose", notes, "--consultation-days", "5"], "error: methodology:"),
        (
            ["methodology", "propose", shipped, "--consultation-days", "5"],
            "error: methodology 2026.1 is already in force",
        ),
        (
            ["methodology", "decide", "2030.1", "withdraw", "--reason", "x"],
            "error: version: no open consultation on methodology '2030.1' (open: none)",
        ),
    ]
    for arguments, expected in refusals:
        result = bcpi(url, *arguments)
        assert result.exit_code == 2, result.output
        assert expected in message(result)

    assert bcpi(url, "methodology", "propose", path, "--consultation-days", "5").exit_code == 0
    for arguments, expected in [
        (
            ["methodology", "propose", path, "--consultation-days", "5"],
            "methodology 2027.1 is already under consultation (proposal 1, closes",
        ),
        (
            ["methodology", "decide", "2027.1", "maybe", "--reason", "x"],
            "error: decision: adopt or withdraw, not 'maybe'",
        ),
        (
            ["methodology", "decide", "2027.1", "withdraw"],
            "error: reason: a decision needs the operator's reason",
        ),
    ]:
        result = bcpi(url, *arguments)
        assert result.exit_code == 2, result.output
        assert expected in message(result)
    assert [a["action"] for a in log(url)] == ["methodology.propose"]

    with TestClient(create_app(Settings(database_url=url))) as client:
        unknown = client.get("/v1/methodology/2030.1")
    assert unknown.status_code == 404
    assert "known: 2025.1, 2025.2, 2026.1, 2027.1" in unknown.json()["detail"]


@pytest.fixture
def chromium() -> str:
    if CHROMIUM is None:
        reason = "chromium is not installed (apt-get install -y chromium)"
        if REQUIRE:
            pytest.fail(f"BCPI_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return CHROMIUM


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_dashboard_lists_versions_and_open_consultations(chromium, deployment, tmp_path):
    _, url = deployment
    for version, days in (("2027.1", 30), ("2027.2", 60)):
        path = version_file(tmp_path, version, dt.date(2027, 3, 1))
        assert bcpi(url, "methodology", "propose", path, "--consultation-days", days).exit_code == 0
    assert bcpi(url, "methodology", "decide", "2027.2", "withdraw", "--reason", "no").exit_code == 0
    closes = beijing_today() + dt.timedelta(days=30)
    cells = (
        "[...document.querySelectorAll('#{} tbody tr')]"
        ".map(r => [...r.cells].map(c => c.textContent))"
    )
    with serve(url) as server:
        browser = Browser(chromium, tmp_path / "profile")
        try:
            browser.call("Page.enable")
            browser.call("Page.navigate", url=server.url + "/?live=0")
            assert browser.wait_for("document.body && document.body.dataset.ready") == "1"
            versions = sorted(browser.evaluate(cells.format("versions")))
            assert [row[:3] for row in versions] == [
                ["2025.1", "2025-01-02", "按生效日期适用"],
                ["2025.2", "2025-01-02", "按生效日期适用"],
                ["2026.1", "2026-12-01", "今日适用"],
            ]
            assert versions[2][3].startswith("Exclusion: the median")
            (open_one,) = browser.evaluate(cells.format("consultations"))
            assert open_one[:5] == [
                "2027.1",
                "2027-03-01",
                beijing_today().isoformat(),
                closes.isoformat(),
                "征求意见中",
            ]
            assert open_one[5].startswith("BCPI：") and "跟踪误差" in open_one[5]

            browser.evaluate("document.getElementById('language').click()")
            (open_one,) = browser.evaluate(cells.format("consultations"))
            assert open_one[4] == "open for comment"
            assert open_one[5].startswith("BCPI: ") and "days differ, tracking error" in open_one[5]
            headings = browser.evaluate(
                "[...document.querySelectorAll('h2')].map(h => h.textContent)"
            )
            assert headings[1:] == ["Methodology versions", "Open consultations"]
        finally:
            browser.close()

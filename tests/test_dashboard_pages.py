"""The dashboard's pages in a real headless Chromium, driven by Playwright, as a reader uses
them: load with the live stream on, switch language, open an index, hover the chart,
open the explanation of a day, download the CSV, and read the calendar, corrections and
methodology pages. Expected values come from the /v1 API and are formatted here by hand.

Needs Debian's ``chromium`` and the ``playwright`` package; skipped with the reason where
either is absent, unless ``BCPI_REQUIRE_BROWSER=1`` (set by CI). Screenshots of each step
are kept under ``build/screenshots/``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

import httpx
import pytest

from cli.demo import run_pipeline
from core.calendar import Calendar
from core.catalogue import load_catalogue
from core.methodology import in_force
from core.settings import Settings
from store.db import make_engine
from tests.publication_data import T0
from tests.publication_server import serve
from tests.test_dashboard import CHROMIUM, REQUIRE, notice

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "build" / "screenshots"
DAYS = 270  # trading days from the base date: more than a year of values
MONTHS_EN = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
MONTHS_LONG_EN = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
]  # fmt: skip


def unavailable() -> str | None:
    if CHROMIUM is None:
        return "chromium is not installed (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = unavailable()
    if reason:
        if REQUIRE:
            pytest.fail(f"BCPI_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory):
    """A deployment with a computed history of ``DAYS`` trading days and one notice."""
    folder = tmp_path_factory.mktemp("pages")
    url = f"sqlite:///{folder / 'bcpi.db'}"
    engine = make_engine(url)
    catalogue = load_catalogue(Settings().catalogue_path)
    run_pipeline(engine, catalogue, folder / "feeds", days=DAYS, calendar=Calendar(in_force()))
    with serve(url) as running:
        points = httpx.get(running.url + "/v1/indices/BCPI-FER/series").json()["points"]
        day = points[-3]
        notice(
            engine,
            "BCPI-FER",
            dt.date.fromisoformat(day["date"]),
            1001.25,
            1002.5,
            "late_trade",
            "b7",
        )
        yield running
    engine.dispose()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert errors == []


def api(server, path: str):
    return httpx.get(server.url + path, timeout=30).json()


def wait_view(page, name: str) -> None:
    page.wait_for_function(
        f"document.body.dataset.view === '{name}' && document.body.dataset.ready === '1'"
    )


def shot(page, name: str) -> None:
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def amount(value: float) -> str:
    """As the English view shows a value: grouped thousands, the published 2 decimals."""
    return f"{value:,.2f}"


def change(value: float) -> str:
    return f"{value:+,.2f}"


def share(ratio: float) -> str:
    return f"{ratio * 100:+.2f}%"


def long_date(iso: str) -> str:
    day = dt.date.fromisoformat(iso)
    return f"{day.day} {MONTHS_LONG_EN[day.month - 1]} {day.year}"


def axis_labels(page, chart: str) -> list[str]:
    return page.locator(f"#{chart} svg text").all_text_contents()


def test_the_page_loads_with_the_live_stream_on_and_lists_every_commodity(page, server):
    # The load event fires although the live stream stays open.
    page.goto(server.url + "/?lang=en", wait_until="load", timeout=20_000)
    wait_view(page, "overview")
    page.wait_for_function("document.getElementById('live').dataset.i18n === 'live_on'")
    assert page.locator("#live").inner_text() == "● live"
    shot(page, "overview-en")

    commodities = api(server, "/v1/commodities")
    rows = page.locator("#assessments tbody tr")
    assert rows.count() == len(commodities)
    for commodity in commodities:
        code = commodity["code"]
        points = api(server, f"/v1/assessments/{code}/series")["points"]
        last, previous = points[-1], points[-2]
        cells = page.locator(f'#assessments tr[data-code="{code}"] td').all_inner_texts()
        assert cells[:6] == [
            code,
            commodity["name_en"],
            last["date"],
            amount(last["value"]),
            commodity["unit"],
            commodity["currency"],
        ]
        assert cells[6] == change(last["value"] - previous["value"])
        assert cells[7] == share(last["value"] / previous["value"] - 1)


def test_month_labels_and_numbers_follow_the_language(page, server):
    page.goto(server.url + "/?live=0&lang=en", wait_until="load")
    wait_view(page, "overview")
    labels = axis_labels(page, "chart")
    assert MONTHS_EN & set(labels), labels
    assert not any("月" in label for label in labels)
    assert page.locator("h1").inner_text() == "Beijing Bulk Commodity Price Index"

    page.click("#language")
    wait_view(page, "overview")
    labels = axis_labels(page, "chart")
    assert any(re.fullmatch(r"\d{1,2}月", label) for label in labels), labels
    assert not MONTHS_EN & set(labels)
    assert page.locator("h1").inner_text() == "北京大宗商品价格指数"
    assert "lang=zh" in page.url
    shot(page, "overview-zh")

    page.click("#language")
    wait_view(page, "overview")
    assert MONTHS_EN & set(axis_labels(page, "chart"))


def test_an_index_page_shows_its_changes_methodology_and_base_date(page, server):
    page.goto(server.url + "/?live=0&lang=en", wait_until="load")
    wait_view(page, "overview")
    page.click('#latest tr[data-code="BCPI"] a[href="#/index/BCPI"]')
    wait_view(page, "index")
    shot(page, "index")

    points = api(server, "/v1/indices/BCPI/series")["points"]
    latest = api(server, "/v1/indices/BCPI/latest")
    last = points[-1]
    assert page.locator("[data-field=latest]").inner_text() == amount(last["value"])
    assert page.locator("[data-field=methodology]").inner_text() == latest["methodology_version"]
    assert page.locator("[data-field=base-date]").inner_text() == "2 January 2025"

    def on_or_before(iso: str) -> dict:
        return [p for p in points if p["date"] <= iso][-1]

    day = dt.date.fromisoformat(last["date"])
    month_ago = (
        day.replace(month=day.month - 1)
        if day.month > 1
        else day.replace(year=day.year - 1, month=12)
    )
    expected = {
        "1d": points[-2],
        "1m": on_or_before(month_ago.isoformat()),
        "1y": on_or_before(day.replace(year=day.year - 1).isoformat()),
    }
    for period, start in expected.items():
        cells = page.locator(f'#changes tr[data-period="{period}"] td').all_inner_texts()
        assert cells[1:] == [
            start["date"],
            amount(start["value"]),
            change(last["value"] - start["value"]),
            share(last["value"] / start["value"] - 1),
        ], period


def test_hovering_the_chart_shows_the_value_rounded(page, server):
    page.goto(server.url + "/?live=0&lang=en#/index/BCPI", wait_until="load")
    wait_view(page, "index")
    box = page.locator("#index-chart").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.45)
    tip = page.locator("#index-chart .tip-value")
    tip.wait_for()
    shown_day = page.locator("#index-chart .tip-date").inner_text()
    by_day = {
        long_date(p["date"]): p["value"] for p in api(server, "/v1/indices/BCPI/series")["points"]
    }
    assert tip.inner_text() == amount(by_day[shown_day])
    assert re.fullmatch(r"\d{1,3}(,\d{3})*\.\d{2}", tip.inner_text())
    shot(page, "tooltip")


def test_the_explain_page_gives_the_rationale_and_the_rules_in_words(page, server):
    page.goto(server.url + "/?live=0&lang=en#/index/BCPI", wait_until="load")
    wait_view(page, "index")
    day = api(server, "/v1/indices/BCPI/latest")["date"]
    page.click(f'#recent tr[data-date="{day}"] a')
    wait_view(page, "explain")
    shot(page, "explain")

    answer = api(server, f"/v1/indices/BCPI/explain?date={day}")
    assert page.locator("#explain-summary").inner_text() == (
        f"BCPI on {long_date(day)} is {amount(answer['value'])}: final, vintage "
        f"{answer['vintage']}, under methodology {answer['methodology_version']}."
    )
    formula = page.locator("#formula").inner_text()
    assert "Chain-linked Laspeyres" in formula
    assert amount(answer["reference_value"]) in formula
    rows = page.locator("#explain-constituents tbody tr")
    assert rows.count() == len(answer["constituents"])
    # value = reference value × Σ weight × level / reference level, by hand.
    contributions = {
        m["code"]: answer["reference_value"] * m["weight"] * m["level"] / m["reference_level"]
        for m in answer["constituents"]
    }
    for code, contribution in contributions.items():
        cell = page.locator(
            f'#explain-constituents tr[data-code="{code}"] [data-field=contribution]'
        )
        assert cell.inner_text() == amount(contribution)
    assert page.locator("#check").inner_text() == (
        f"Sum of the contributions: {amount(sum(contributions.values()))}."
    )
    # Methodology 2025.2 (METHODOLOGY.md §4): k-sigma with k = 2, 3 trades on 2 exchanges,
    # no exchange above 80%, 5 stale days, cut-off 15:00 Beijing time.
    rules = page.locator("#rules li").all_inner_texts()
    assert any("15:00 (Asia/Shanghai)" in r for r in rules)
    assert any("more than 2 volume-weighted standard deviations" in r for r in rules)
    assert any("at least 3 trades on at least 2 exchanges" in r and "80%" in r for r in rules)
    assert any("at most 5 publication days" in r for r in rules)


def test_the_csv_download_is_the_published_series(page, server):
    page.goto(server.url + "/?live=0&lang=en#/index/BCPI-AGR", wait_until="load")
    wait_view(page, "index")
    with page.expect_download() as download:
        page.click("#download-csv")
    body = Path(download.value.path()).read_text()
    assert download.value.suggested_filename.startswith("BCPI-AGR")
    published = httpx.get(server.url + "/v1/indices/BCPI-AGR/series?format=csv").text
    assert body == published
    rows = list(csv.DictReader(io.StringIO(body)))
    points = api(server, "/v1/indices/BCPI-AGR/series")["points"]
    assert [r["date"] for r in rows] == [p["date"] for p in points]
    assert [float(r["value"]) for r in rows] == [p["value"] for p in points]
    shot(page, "download")


def test_calendar_corrections_and_methodology_pages(page, server):
    page.goto(server.url + "/?live=0&lang=en#/calendar/2025", wait_until="load")
    wait_view(page, "calendar")
    year = api(server, "/v1/calendar?year=2025")
    counts = page.locator("#calendar tbody tr td:nth-child(2)").all_inner_texts()
    assert sum(int(c) for c in counts) == len(year["days"])
    february = page.locator('#calendar tr[data-month="2"] td').all_inner_texts()
    assert february[0] == "February"
    assert february[2].split(", ") == [
        str(int(d["date"][8:])) for d in year["days"] if d["date"][5:7] == "02"
    ]
    shot(page, "calendar")

    page.click("nav a[href='#/corrections']")
    wait_view(page, "corrections")
    (notice_row,) = api(server, "/v1/corrections")["corrections"]
    cells = page.locator("#corrections tbody tr").first.locator("td").all_inner_texts()
    assert cells == [
        (T0 + dt.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M"),
        "BCPI-FER",
        notice_row["date"],
        "1,001.25",
        "1,002.50",
        "+1.25",
        "late trade: b7",
    ]
    shot(page, "corrections")

    page.click("nav a[href='#/methodology']")
    wait_view(page, "methodology")
    versions = api(server, "/v1/methodology")["versions"]
    shown = page.locator("#versions tbody tr td:first-child").all_inner_texts()
    assert shown == [v["version"] for v in versions]
    shot(page, "methodology")

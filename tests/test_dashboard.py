"""The dashboard in headless Chromium, driven over the DevTools protocol.

The page loads with bundled assets only, draws the composite and sector indices with
ECharts, fills the latest-values table, lists correction notices on their page, adds a
picked commodity to the chart, switches language, and updates live when a value is
published (tests/test_dashboard_pages.py drives the other pages with Playwright). Needs
Debian's ``chromium``; skipped with the reason where it is absent, unless
``BCPI_REQUIRE_BROWSER=1`` (set by CI).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
import shutil
import subprocess
import time

import httpx
import pytest
from websockets.sync.client import connect

from store import models
from store.db import session_scope
from tests.publication_data import T0, index_id, level, publish_index, weekdays
from tests.publication_server import serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRE = os.environ.get("BCPI_REQUIRE_BROWSER") == "1"
DAYS = weekdays(dt.date(2025, 1, 2), 120)
SECTORS = ["BCPI-AGR", "BCPI-FER", "BCPI-ENV", "BCPI-CHE", "BCPI-FOR"]


@pytest.fixture(scope="module")
def chromium() -> str:
    if CHROMIUM is None:
        reason = "chromium is not installed (apt-get install -y chromium)"
        if REQUIRE:
            pytest.fail(f"BCPI_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    return CHROMIUM


class Browser:
    """Just enough of the DevTools protocol: navigate, evaluate, wait."""

    def __init__(self, chromium: str, profile) -> None:
        self.process = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
                "about:blank",
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = self.process.stderr.readline()
            found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if found:
                port = int(found.group(1))
            elif not line and self.process.poll() is not None:
                break
        assert port, "chromium did not open its DevTools port"
        pages = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(p for p in pages if p["type"] == "page")
        self.connection = connect(page["webSocketDebuggerUrl"], max_size=2**26)
        self.socket = self.connection.__enter__()
        self.ids = itertools.count(1)

    def call(self, method: str, **params):
        number = next(self.ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == number:
                assert "error" not in message, message
                return message["result"]

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {expression}")

    def close(self) -> None:
        self.connection.__exit__(None, None, None)
        self.process.terminate()
        self.process.wait(timeout=10)


def notice(engine, code, day, old, new, reason, cause) -> None:
    """A correction notice as the one door records it."""
    with session_scope(engine) as session:
        session.add(
            models.Correction(
                index_id=index_id(session, code),
                date=day,
                old_vintage=1,
                new_vintage=2,
                old_value=old,
                new_value=new,
                reason=reason,
                cause=cause,
                forced=False,
                published_at=T0 + dt.timedelta(hours=1),
            )
        )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_dashboard_draws_indices_lists_latest_values_and_updates_live(
    chromium, engine, database_url, tmp_path
):
    publish_index(engine, "BCPI", {d: level(d) for d in DAYS}, now=T0)
    for n, code in enumerate(SECTORS):
        publish_index(engine, code, {d: level(d) * (0.8 + n / 10) for d in DAYS}, now=T0)
    publish_index(engine, "COTTON", {d: level(d) * 0.9 for d in DAYS}, now=T0)
    publish_index(
        engine, "BCPI-AGR", {DAYS[-1] + dt.timedelta(days=3): 999.0}, now=T0, status="provisional"
    )
    notice(engine, "BCPI-FER", DAYS[5], 1001.25, 1002.5, "late_trade", "batch 7")
    with serve(database_url, stream_poll_seconds="0.1") as server:
        browser = Browser(chromium, tmp_path / "profile")
        try:
            browser.call("Page.enable")
            browser.call("Page.navigate", url=server.url + "/")
            assert browser.wait_for("document.body && document.body.dataset.ready") == "1"
            chart = "document.getElementById('chart').dataset"
            assert browser.evaluate(f"{chart}.series") == str(1 + len(SECTORS))
            assert int(browser.evaluate(f"{chart}.points")) == (1 + len(SECTORS)) * len(DAYS) + 1
            assert browser.evaluate("document.querySelectorAll('#chart svg path').length") >= 1
            # What ECharts itself holds: six lines, every point of each.
            lengths = browser.evaluate(
                "bcpi.charts.chart.getOption().series.map(s => s.data.length)"
            )
            assert sorted(lengths) == [len(DAYS)] * len(SECTORS) + [len(DAYS) + 1]

            rows = "document.querySelectorAll('#latest tbody tr')"
            assert browser.evaluate(f"{rows}.length") == 1 + len(SECTORS) + 9
            statuses = browser.evaluate(
                "Object.fromEntries([...document.querySelectorAll('#latest tbody tr')]"
                ".map(r => [r.dataset.code, r.querySelector('[data-status]')?.dataset.status]))"
            )
            assert statuses["BCPI"] == "final" and statuses["BCPI-AGR"] == "provisional"
            links = browser.evaluate(
                "[...document.querySelectorAll('#latest a')].map(a => a.getAttribute('href'))"
            )
            assert "/v1/indices/BCPI/series?format=csv" in links
            assert "/v1/indices/BCPI/series?format=parquet" in links
            assert f"#/explain/BCPI/{DAYS[-1]}" in links
            assert browser.evaluate("document.querySelector('h1').textContent") == (
                "北京大宗商品价格指数"
            )
            notices = "[...document.querySelectorAll('#corrections tbody tr')]"
            browser.evaluate("location.hash = '#/corrections'")
            browser.wait_for("document.body.dataset.view === 'corrections'")
            assert browser.evaluate(
                f"{notices}.map(r => [...r.cells].map(c => c.textContent))"
            ) == [
                [
                    "2026-03-02 10:00",
                    "BCPI-FER",
                    str(DAYS[5]),
                    "1,001.25",
                    "1,002.50",
                    "+1.25",
                    "迟报成交: batch 7",
                ]
            ]
            browser.evaluate("location.hash = '#/'")
            browser.wait_for(
                "document.body.dataset.view === 'overview' && document.body.dataset.ready === '1'"
            )

            # Live: a newly published provisional value reaches the table and the chart.
            browser.wait_for("document.getElementById('live').dataset.i18n === 'live_on'")
            new_day = DAYS[-1] + dt.timedelta(days=4)
            publish_index(
                engine, "BCPI", {new_day: 1234.5}, now=T0 + dt.timedelta(1), status="provisional"
            )
            browser.wait_for(
                "document.querySelector('tr[data-code=\"BCPI\"] td.num').textContent === '1,234.50'"
            )
            assert int(browser.evaluate(f"{chart}.points")) == (1 + len(SECTORS)) * len(DAYS) + 2

            # The commodity picker adds a commodity's index to the chart.
            browser.evaluate(
                "(() => { const s = document.getElementById('commodity'); s.value = 'COTTON';"
                " s.dispatchEvent(new Event('change')); })()"
            )
            browser.wait_for(f"{chart}.series === '7'")

            # English labels on demand.
            browser.evaluate("document.getElementById('language').click()")
            assert browser.evaluate("document.querySelector('h1').textContent") == (
                "Beijing Bulk Commodity Price Index"
            )
            browser.wait_for("document.body.dataset.ready === '1'")
            assert (
                browser.evaluate(
                    "document.querySelector('tr[data-code=\"BCPI-AGR\"] [data-status]').textContent"
                )
                == "provisional"
            )
            browser.evaluate("location.hash = '#/corrections'")
            browser.wait_for("document.body.dataset.view === 'corrections'")
            assert browser.evaluate(f"{notices}[0].cells[6].textContent") == "late trade: batch 7"
        finally:
            browser.close()

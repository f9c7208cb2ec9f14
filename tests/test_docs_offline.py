"""The API documentation works without internet: ``/docs`` (Swagger UI) and ``/redoc``
load every asset from this server, and render the API in a browser that may reach no
other host."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from tests.publication_server import serve
from tests.test_dashboard_pages import CHROMIUM, REQUIRE, SCREENSHOTS, unavailable


class References(HTMLParser):
    """Every URL a page loads (scripts, stylesheets, icons, images) and every absolute URL
    anywhere in it (attributes and inline text)."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img") and attrs.get("src"):
            self.loaded.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.loaded.append(attrs["href"])
        self.text.extend(v for v in attrs.values() if v)

    def handle_data(self, data):
        self.text.append(data)


def references(html: str) -> References:
    parser = References()
    parser.feed(html)
    return parser


@pytest.fixture
def client(database_url, tmp_path):
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon-32x32.png"}),
    ],
)
def test_docs_pages_load_every_asset_from_this_server(client, page, expected):
    answer = client.get(page)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    found = references(answer.text)
    assert {Path(urlsplit(u).path).name for u in found.loaded} == expected
    for url in found.loaded:
        absolute = urljoin(str(client.base_url) + page, url)
        assert urlsplit(absolute).netloc == urlsplit(str(client.base_url)).netloc, url
        asset = client.get(absolute)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url
    # No URL of another host anywhere in the page, the inline script included.
    text = " ".join(found.text)
    assert "http://" not in text and "https://" not in text
    # What the inline script fetches: the OpenAPI document (and Swagger UI's OAuth2 page).
    fetched = set(re.findall(r"""["'](/[\w./-]+)["']""", text))
    fetched |= {v for v in found.text if re.fullmatch(r"/[\w./-]+", v)}
    assert "/openapi.json" in fetched
    for path in fetched:
        assert client.get(path).status_code == 200, path


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_swagger_ui_oauth2_redirect_and_asset_types(client):
    assert client.get("/docs/oauth2-redirect").status_code == 200
    js = client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert "javascript" in js.headers["content-type"]
    assert "SwaggerUIBundle" in js.text
    assert (
        client.get("/static/vendor/swagger-ui/swagger-ui.css")
        .headers["content-type"]
        .startswith("text/css")
    )
    redoc = client.get("/static/vendor/redoc/redoc.standalone.js")
    assert "javascript" in redoc.headers["content-type"]
    assert client.get("/static/vendor/redoc/LICENSE").text.startswith("The MIT License")
    assert client.get("/static/vendor/swagger-ui/nothing.js").status_code == 404
    assert client.get("/static/swagger-ui-bundle.js").status_code == 404


@pytest.fixture(scope="module")
def browser():
    reason = unavailable()
    if reason:
        if REQUIRE:
            pytest.fail(f"BCPI_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_docs_render_in_a_browser_that_reaches_no_other_host(browser, database_url):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with serve(database_url) as server:
        own = urlsplit(server.url).netloc
        elsewhere: list[str] = []
        context = browser.new_context(viewport={"width": 1280, "height": 900})

        def only_this_server(route):
            if urlsplit(route.request.url).netloc == own:
                route.continue_()
            else:
                elsewhere.append(route.request.url)
                route.abort()

        context.route("**/*", only_this_server)
        page = context.new_page()
        failed: list[tuple[str, str]] = []
        page.on("requestfailed", lambda r: failed.append((r.url, r.failure)))
        page.goto(server.url + "/docs", wait_until="load")
        page.wait_for_selector(".opblock-summary-path", timeout=30_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert any("/v1/indices/{code}/series" in p for p in paths)
        assert "bcpi" in page.locator(".title").first.inner_text()
        page.screenshot(path=SCREENSHOTS / "docs-swagger.png")

        page.goto(server.url + "/redoc", wait_until="load")
        page.wait_for_selector("h1", timeout=30_000)
        assert "bcpi" in page.locator("h1").first.inner_text()
        page.locator(
            "h2", has_text="History of one index in JSON, CSV, Parquet or Arrow"
        ).first.wait_for()
        page.screenshot(path=SCREENSHOTS / "docs-redoc.png")
        context.close()
    # Nothing left the browser: what asked for another host was refused by the pages'
    # Content-Security-Policy before any request was made.
    assert elsewhere == []
    assert all(failure == "csp" for _, failure in failed), failed

"""HTTP behaviour: catalogue, conditional requests, read keys and limits, client mistakes."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from core.methodology import in_force
from core.settings import Settings
from store import models
from store.db import session_scope
from store.reference import hash_key
from tests.publication_data import T0, level, publish_assessments, publish_index, weekdays

DAYS = weekdays(dt.date(2025, 1, 2), 60)


@pytest.fixture
def seeded(engine):
    publish_index(engine, "BCPI", {d: level(d) for d in DAYS}, now=T0)
    publish_index(engine, "BCPI-AGR", {d: level(d) / 2 for d in DAYS}, now=T0)
    points = [
        {
            "date": d,
            "price": level(d) * 14,
            "trades": 5,
            "volume": 50.0,
            "high": level(d) * 14.1,
            "low": level(d) * 13.9,
            "fallback": "none",
        }
        for d in DAYS
    ]
    publish_assessments(engine, "COTTON", points, now=T0)
    publish_assessments(engine, "REBAR", [{**p, "price": p["price"] / 4} for p in points], now=T0)
    return engine


def _client(database_url, **settings):
    return TestClient(create_app(Settings(database_url=database_url, **settings)))


@pytest.fixture
def client(seeded, database_url):
    with _client(database_url) as client:
        yield client


def _key(engine, role="read", revoked=False) -> str:
    key = f"bcpi_test_{role}_{revoked}_{id(engine)}"
    with session_scope(engine) as session:
        session.add(
            models.ApiKey(
                key_hash=hash_key(key),
                prefix=key[:12],
                role=role,
                revoked_at=T0 if revoked else None,
            )
        )
    return key


def test_catalogue_lists_commodities_and_index_details(client, catalogue):
    commodities = client.get("/v1/commodities").json()
    assert {c["code"] for c in commodities} == {c.code for c in catalogue.commodities}
    ironore = next(c for c in commodities if c["code"] == "IRONORE")
    assert ironore["unit"] == "dmt" and ironore["currency"] == "USD"
    assert ironore["spec"]["fe_pct"] == 62.0 and ironore["name_zh"].startswith("铁矿石")

    detail = client.get("/v1/indices/BCPI").json()
    assert detail["kind"] == "composite"
    weights = {c["code"]: c["weight"] for c in detail["constituents"]}
    assert weights == {code: p.weight for code, p in in_force().commodities.items()}
    assert detail["methodology_version"]
    assert detail["latest"]["date"] == DAYS[-1].isoformat()
    assert detail["latest"]["value"] == level(DAYS[-1])
    assert "normalising_constant" in detail
    before = client.get("/v1/indices/BCPI", params={"as_of": "2020-01-01T00:00:00Z"}).json()
    assert before["latest"] is None and before["constituents"] == detail["constituents"]
    sector = client.get("/v1/indices/BCPI-AGR").json()
    assert [c["code"] for c in sector["constituents"]] == ["COTTON"]
    assert sector["constituents"][0]["weight"] == pytest.approx(1.0)


TAGGED = [
    "/v1/indices",
    "/v1/indices/BCPI",
    "/v1/commodities",
    "/v1/calendar?year=2025",
    "/v1/indices/BCPI/series?start=2025-02-01",
    "/v1/indices/BCPI/series?format=csv",
    "/v1/indices/BCPI/latest",
    "/v1/assessments/COTTON/series?frequency=weekly",
    "/v1/corrections",
    "/v1/changes?updated_after=2020-01-01T00:00:00Z",
    "/",
    "/openapi.json",
]


def test_every_get_has_an_etag_and_if_none_match_answers_304(client):
    for url in TAGGED:
        first = client.get(url)
        assert first.status_code == 200, url
        tag = first.headers["etag"]
        again = client.get(url, headers={"If-None-Match": tag})
        assert again.status_code == 304 and again.content == b"", url
        assert again.headers["etag"] == tag
        other = client.get(url, headers={"If-None-Match": '"something-else"'})
        assert other.status_code == 200, url


def test_new_publication_changes_the_etag(client, seeded):
    url = "/v1/indices/BCPI/series"
    first = client.get(url)
    tag = first.headers["etag"]
    assert client.get(url).content == first.content  # the second from the answer cache
    assert client.get(url, headers={"If-None-Match": tag}).status_code == 304
    publish_index(seeded, "BCPI", {DAYS[-1]: 1.0}, now=T0 + dt.timedelta(hours=1))
    fresh = client.get(url, headers={"If-None-Match": tag})
    assert fresh.status_code == 200 and fresh.headers["etag"] != tag
    assert fresh.json()["points"][-1]["value"] == 1.0
    assert client.get(url).json()["points"][-1]["value"] == 1.0  # nothing stale is cached
    # Formats are different representations: different tags.
    csv_tag = client.get(url, params={"format": "csv"}).headers["etag"]
    assert csv_tag != fresh.headers["etag"]


def test_static_assets_are_bundled_and_cached(client):
    script = client.get("/static/vendor/echarts/echarts.min.js")
    assert script.status_code == 200 and len(script.content) > 500_000
    again = client.get(
        "/static/vendor/echarts/echarts.min.js", headers={"If-None-Match": script.headers["etag"]}
    )
    assert again.status_code == 304
    page = client.get("/").text
    assert "/static/vendor/echarts/echarts.min.js" in page
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page


def test_read_keys_are_optional_and_rate_limited_across_workers(seeded, database_url):
    key = _key(seeded)
    limits = {"read_rate_limit": 3, "rate_limit_window_seconds": 3600}
    # Two applications on one database stand for two worker processes.
    with _client(database_url, **limits) as one, _client(database_url, **limits) as two:
        headers = {"Authorization": f"Bearer {key}"}
        assert one.get("/v1/indices", headers=headers).status_code == 200
        assert two.get("/v1/indices", headers={"X-API-Key": key}).status_code == 200
        third = one.get("/v1/indices/BCPI/latest", headers=headers)
        assert third.status_code == 200 and third.headers["x-ratelimit-remaining"] == "0"
        refused = two.get("/v1/indices", headers=headers)
        assert refused.status_code == 429
        assert refused.json()["error"] == "RateLimited"
        assert 1 <= int(refused.headers["retry-after"]) <= 3600
        # Without a key nothing is limited by default; another key has its own budget.
        assert one.get("/v1/indices").status_code == 200
        other = _key(seeded, role="admin")
        assert two.get("/v1/indices", headers={"X-API-Key": other}).status_code == 200


def test_unknown_or_revoked_keys_are_refused_and_keys_can_be_required(seeded, database_url):
    revoked = _key(seeded, revoked=True)
    with _client(database_url, require_read_key=True) as client:
        missing = client.get("/v1/indices")
        assert missing.status_code == 401 and missing.json()["error"] == "Unauthenticated"
        assert missing.headers["www-authenticate"] == "Bearer"
        assert client.get("/v1/indices", headers={"X-API-Key": "bcpi_nope"}).status_code == 401
        assert client.get("/v1/indices", headers={"X-API-Key": revoked}).status_code == 401
        good = _key(seeded)
        assert client.get("/v1/indices", headers={"X-API-Key": good}).status_code == 200
        assert client.get("/healthz").status_code == 200  # probes need no key


def test_anonymous_callers_share_a_per_address_limit(seeded, database_url):
    with _client(database_url, anonymous_rate_limit=2) as client:
        assert [client.get("/v1/commodities").status_code for _ in range(3)] == [200, 200, 429]


MISTAKES = [
    ("/v1/indices/NOPE/series", 404, "UnknownIndex"),
    ("/v1/indices/NOPE", 404, "UnknownIndex"),
    ("/v1/assessments/NOPE/series", 404, "UnknownCommodity"),
    ("/v1/indices/BCPI/series?start=2025-02-01&end=2025-01-01", 422, "InvalidRange"),
    ("/v1/indices/BCPI/series?start=yesterday", 422, "InvalidRequest"),
    ("/v1/indices/BCPI/series?frequency=hourly", 422, "InvalidRequest"),
    ("/v1/indices/BCPI/series?transform=cumul", 422, "InvalidRequest"),
    ("/v1/indices/BCPI/series?order=up", 422, "InvalidRequest"),
    ("/v1/indices/BCPI/series?limit=0", 422, "InvalidRequest"),
    ("/v1/indices/BCPI/series?limit=99999999999999999999", 422, "InvalidRequest"),
    ("/v1/indices/BCPI/series?format=xlsx", 422, "InvalidRequest"),
    ("/v1/indices/BCPI/series?transform=rebase&rebase_to=NaN", 422, "InvalidRequest"),
    ("/v1/indices/BCPI/series?transform=rebase&rebase_to=inf", 422, "InvalidRequest"),
    ("/v1/indices/BCPI/series?transform=rebase&rebase_to=-1", 422, "InvalidRequest"),
    ("/v1/indices/BCPI/series?as_of=0001-01-01T00:00:00%2B14:00", 422, "InvalidRange"),
    ("/v1/indices/BCPI/series?as_of=9999-12-31T23:59:59-14:00", 422, "InvalidRange"),
    ("/v1/indices/BCPI/series?as_of=soon", 422, "InvalidRequest"),
    ("/v1/indices/BCPI/series?start=%00", 422, "InvalidRequest"),
    ("/v1/indices/%00/series", 422, "InvalidRequest"),
    ("/v1/indices/BC%00PI", 422, "InvalidRequest"),
    ("/v1/assessments/COT%00TON/series", 422, "InvalidRequest"),
    ("/v1/corrections?index=%00", 422, "InvalidRequest"),
    ("/v1/formulas/fisher?commodities=COTTON%00", 422, "InvalidRequest"),
    ("/v1/indices/BCPI/explain", 422, "InvalidRequest"),
    ("/v1/indices/BCPI/explain?date=2030-01-01", 404, "NotPublished"),
    ("/v1/indices/BCPI/vintages?date=20250101x", 422, "InvalidRequest"),
    ("/v1/changes", 422, "InvalidRequest"),
    ("/v1/changes?updated_after=2025-01-01T00:00:00Z&cursor=index:x", 422, "InvalidRange"),
    ("/v1/changes?updated_after=2025-01-01T00:00:00Z&limit=0", 422, "InvalidRequest"),
    ("/v1/formulas/magic?commodities=COTTON", 422, "InvalidRequest"),
    ("/v1/formulas/fisher?commodities=NOPE", 404, "UnknownCommodity"),
    ("/v1/formulas/fisher?commodities=,", 422, "InvalidRange"),
    ("/v1/formulas/geks?commodities=COTTON,REBAR&window=1", 422, "InvalidRequest"),
    ("/v1/formulas/geks?commodities=COTTON,REBAR&window=500", 422, "InvalidInput"),
    ("/v1/formulas/fisher?commodities=COTTON&base=1999-01-01", 422, "InvalidInput"),
    ("/v1/stream?limit=0", 422, "InvalidRequest"),
    ("/v1/calendar?year=1999", 422, "InvalidRequest"),
    ("/v1/calendar?year=next", 422, "InvalidRequest"),
    ("/v1/nothing-here", 404, "HTTPError"),
]


def test_client_mistakes_get_a_clear_4xx_never_5xx(client):
    wrong = []
    for url, status, error in MISTAKES:
        answer = client.get(url)
        body = answer.json()
        if (answer.status_code, body.get("error")) != (status, error) or not body.get("detail"):
            wrong.append((url, answer.status_code, body))
    assert wrong == []


def test_invalid_formula_input_names_the_field_at_fault(client):
    for url, field in [
        ("/v1/formulas/geks?commodities=COTTON,REBAR&window=500", "window"),
        # The formula library's name of the base (the query parameter is ``base``).
        ("/v1/formulas/fisher?commodities=COTTON&base=1999-01-01", "base"),
    ]:
        answer = client.get(url)
        assert answer.status_code == 422, url
        body = answer.json()
        assert body["error"] == "InvalidInput", url
        [problem] = body["detail"]
        assert set(problem) == {"field", "message"} and problem["field"] == field, url
        assert problem["message"], url


def test_unacceptable_media_type_is_406_and_quality_values_are_honoured(client):
    url = "/v1/indices/BCPI/series"
    refused = client.get(url, headers={"Accept": "image/png"})
    assert refused.status_code == 406 and refused.json()["error"] == "NotAcceptable"
    chosen = client.get(url, headers={"Accept": "application/json;q=0.5, text/csv"})
    assert chosen.headers["content-type"].startswith("text/csv")
    browser = client.get(url, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert browser.headers["content-type"] == "application/json"


def test_changes_page_through_every_vintage_once(client, seeded):
    later = T0 + dt.timedelta(minutes=5)
    publish_index(seeded, "BCPI", {DAYS[0]: 5.0, DAYS[1]: 6.0}, now=later)
    seen, query = [], {"updated_after": (T0 - dt.timedelta(seconds=1)).isoformat(), "limit": 7}
    url = "/v1/changes"
    while True:
        body = client.get(url, params=query).json()
        seen += body["changes"]
        if body["next"] is None:
            break
        url, query = "/v1/changes" + body["next"], None
    # 60 days × (2 indices + 2 assessments) at T0, then 2 new BCPI vintages.
    assert len(seen) == 60 * 4 + 2
    keys = {(c["kind"], c["code"], c["date"], c["vintage"]) for c in seen}
    assert len(keys) == len(seen)
    known_then = client.get(
        "/v1/changes",
        params={"updated_after": T0.isoformat(), "as_of": (later - dt.timedelta(seconds=1))},
    ).json()
    assert known_then["changes"] == []
    after_first = client.get("/v1/changes", params={"updated_after": T0.isoformat()}).json()
    assert [(c["code"], c["value"], c["vintage"]) for c in after_first["changes"]] == [
        ("BCPI", 5.0, 2),
        ("BCPI", 6.0, 2),
    ]


def test_formula_endpoint_computes_over_chosen_commodities(client, seeded):
    answer = client.get(
        "/v1/formulas/laspeyres",
        params={"commodities": "COTTON,REBAR", "start": DAYS[0], "end": DAYS[5]},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["formula"] == "laspeyres" and body["commodities"] == ["COTTON", "REBAR"]
    points = body["points"]
    assert [p["period"] for p in points] == [d.isoformat() for d in DAYS[:6]]
    # Both items move by the same factor (REBAR is COTTON / 4), quantities are equal:
    # Laspeyres of period t against the first is level(t) / level(first).
    for point, day in zip(points, DAYS, strict=False):
        assert point["value"] == pytest.approx(level(day) / level(DAYS[0]), rel=1e-12)
    geks = client.get(
        "/v1/formulas/geks",
        params={"commodities": "COTTON,REBAR", "window": 5, "geks_base": "fisher"},
    )
    assert geks.status_code == 200, geks.text
    assert geks.json()["points"][0]["value"] == pytest.approx(1.0)
    csv = client.get(
        "/v1/formulas/fisher", params={"commodities": "COTTON", "format": "csv"}
    ).text.splitlines()
    assert csv[0] == "period,value" and len(csv) == 1 + len(DAYS)


def test_openapi_documents_every_endpoint(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in [
        "/v1/commodities",
        "/v1/calendar",
        "/v1/indices",
        "/v1/indices/{code}",
        "/v1/indices/{code}/series",
        "/v1/indices/{code}/latest",
        "/v1/indices/{code}/explain",
        "/v1/indices/{code}/vintages",
        "/v1/assessments/{commodity}/series",
        "/v1/corrections",
        "/v1/changes",
        "/v1/stream",
        "/v1/formulas/{formula}",
    ]:
        assert path in paths, path
    series = paths["/v1/indices/{code}/series"]["get"]
    names = {p["name"] for p in series["parameters"]}
    assert {"start", "end", "frequency", "transform", "as_of", "order", "limit", "format"} <= names
    assert "text/csv" in series["responses"]["200"]["content"]


def test_commodity_rows_come_from_the_database(client, seeded):
    with session_scope(seeded) as session:
        count = len(session.scalars(select(models.Commodity)).all())
    assert len(client.get("/v1/commodities").json()) == count

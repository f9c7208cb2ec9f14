"""Schemathesis against the served OpenAPI document, on SQLite and PostgreSQL.

Every operation gets the coverage phase's boundary cases (positive and negative), then
hypothesis-generated positive and negative cases, and a stateful run follows the
document's links (a pushed trade, then read, amended, cancelled). Each response must be
no 5xx, a documented status, of a documented media type, matching its documented schema
and headers; an operation that needs a key must refuse requests without one.

Two of Schemathesis's checks are left out, because they test what OpenAPI cannot say:
``positive_data_acceptance`` (a schema-valid request may still be refused: an unknown
code is 404, ``end`` before ``start`` is 422) and ``negative_data_rejection`` (query
instants are parsed leniently: ``as_of=1700000000`` is read as epoch seconds).

Examples per operation and mode: 10, or 500 with ``BCPI_FULL=1`` (which also sends every
coverage case, not every third); the figures are printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import httpx
import pytest
import requests
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.methodology import in_force
from store.bootstrap import prepare_database
from store.db import make_engine
from tests.support_api import (
    FULL,
    OWN_TRADES,
    Keys,
    app_for,
    issue_keys,
    own_trade_rows,
    run_size,
    seed_history,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    ignored_auth,
]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
STREAM = "GET /v1/stream"
# Bodies of the text and binary feed formats are sent as generated.
for _media in ("application/x-ndjson", "text/csv"):
    schemathesis.serializer.alias(_media, "text/plain")
for _media in ("application/vnd.apache.parquet", "application/vnd.apache.arrow.stream"):
    schemathesis.serializer.alias(_media, "application/octet-stream")
EXAMPLES = run_size(10, 500)
STATEFUL_RUNS = run_size(10, 200)
# The coverage phase's boundary cases: all of them in the full run, every third by default.
COVERAGE_STRIDE = 1 if FULL else 3


def key_for(path: str, keys: Keys) -> str:
    """The key an honest caller of ``path`` would send."""
    if path.startswith(("/v1/ops", "/v1/feeds")):
        return keys.admin
    if path.startswith("/v1/trades"):
        return keys.exchange
    return keys.read


def anchors(catalogue) -> dict[str, list[dict]]:
    """Known-good values for some parameters, so that generated cases also reach past the
    lookup of an index, commodity or trade into the code behind it."""
    indices = [d.code for d in catalogue.index_definitions(in_force())]
    commodities = [c.code for c in catalogue.commodities]
    trades = [{"path_parameters": {"trade_id": t}} for t in OWN_TRADES]
    return {
        "GET /v1/indices/{code}": [{"path_parameters": {"code": c}} for c in indices],
        "GET /v1/indices/{code}/series": [{"path_parameters": {"code": c}} for c in indices],
        "GET /v1/indices/{code}/latest": [{"path_parameters": {"code": c}} for c in indices],
        "GET /v1/indices/{code}/vintages": [
            {"path_parameters": {"code": c}, "query": {"date": "2025-01-03"}} for c in indices
        ],
        "GET /v1/indices/{code}/explain": [
            {"path_parameters": {"code": c}, "query": {"date": "2025-01-06"}} for c in indices
        ],
        "GET /v1/assessments/{commodity}/series": [
            {"path_parameters": {"commodity": c}} for c in commodities
        ],
        "GET /v1/formulas/{formula}": [
            {"query": {"commodities": ",".join(commodities[: n + 2])}} for n in range(4)
        ],
        "GET /v1/corrections": [{"query": {"index": c}} for c in indices[:3]],
        "GET /v1/trades/{trade_id}": trades,
        "PUT /v1/trades/{trade_id}": trades,
        "DELETE /v1/trades/{trade_id}": trades,
    }


@dataclass
class Tally:
    """What one database's run saw: examples, statuses, and each distinct failure once."""

    examples: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    failures: dict = field(default_factory=dict)

    def fail(self, label: str, title: str, reproduce: str) -> None:
        count, first = self.failures.get((label, title), (0, reproduce))
        self.failures[(label, title)] = (count + 1, first)

    def report(self, database: str) -> str:
        lines = [f"schemathesis on {database}: operation, examples by mode, statuses"]
        for label in sorted({k[0] for k in self.examples}):
            modes = ", ".join(
                f"{mode} {self.examples[(label, mode)]}"
                for mode in ("coverage", "positive", "negative", "stateful")
                if self.examples[(label, mode)]
            )
            statuses = ", ".join(
                f"{status}×{n}" for (op, status), n in sorted(self.statuses.items()) if op == label
            )
            lines.append(f"  {label}: {modes}; {statuses}")
        total = sum(self.examples.values())
        server_errors = sum(n for (_, status), n in self.statuses.items() if status >= 500)
        lines.append(
            f"  total {total} requests, {server_errors} × 5xx, {len(self.failures)} failures"
        )
        return "\n".join(lines)


async def _open_stream(app, kwargs: dict) -> tuple[int, list, bytes]:
    """Send one request to the ASGI app and hang up once the answer has started: the
    status and headers of an endless event stream, or the whole body of an error."""
    url = requests.Request(kwargs["method"], kwargs["url"], params=kwargs.get("params")).prepare()
    parts = urlsplit(url.url)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": kwargs["method"],
        "scheme": "http",
        "path": unquote(parts.path),
        "raw_path": parts.path.encode(),
        "query_string": parts.query.encode(),
        "root_path": "",
        "headers": [
            (k.lower().encode("latin-1"), str(v).encode("latin-1"))
            for k, v in kwargs["headers"].items()
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    started, answered = asyncio.Event(), {"body": b""}
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await started.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            answered["status"], answered["headers"] = message["status"], message["headers"]
            if message["status"] == 200:
                started.set()
        elif message["type"] == "http.response.body" and answered["status"] != 200:
            answered["body"] += message.get("body", b"")
            if not message.get("more_body"):
                started.set()

    await asyncio.wait_for(app(scope, receive, send), timeout=30)
    return answered["status"], answered["headers"], answered["body"]


def call_stream(app, case, headers: dict) -> httpx.Response:
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    status, raw_headers, body = asyncio.run(_open_stream(app, kwargs))
    request = httpx.Request(kwargs["method"], kwargs["url"], params=kwargs.get("params"))
    response = httpx.Response(
        status,
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw_headers],
        content=body,
        request=request,
    )
    response.elapsed = dt.timedelta(0)
    return response


@dataclass
class Served:
    app: object
    schema: schemathesis.BaseSchema
    keys: Keys
    tally: Tally
    database: str

    def send(self, case, mode: str) -> None:
        label = case.operation.label
        headers = {"Authorization": f"Bearer {key_for(case.operation.path, self.keys)}"}
        self.tally.examples[(label, mode)] += 1
        try:
            if label == STREAM:
                response = call_stream(self.app, case, headers)
                self.tally.statuses[(label, response.status_code)] += 1
                case.validate_response(response, checks=CHECKS, headers=headers)
            else:
                response = case.call(headers=headers)
                self.tally.statuses[(label, response.status_code)] += 1
                case.validate_response(response, checks=CHECKS, headers=headers)
        except BaseExceptionGroup as group:
            for failure in group.exceptions:
                title = str(failure).strip().splitlines()[0]
                self.tally.fail(label, f"{type(failure).__name__}: {title}", _reproduce(case))
        except Exception as exc:  # the app raised: a 500 that never reached a response
            self.tally.statuses[(label, 500)] += 1
            self.tally.fail(label, f"{type(exc).__name__}: {exc}"[:300], _reproduce(case))


def _reproduce(case) -> str:
    return case.as_curl_command(headers={"Authorization": "Bearer <key>"})[:1000]


@pytest.fixture
def served(database_url, catalogue, tmp_path) -> Served:
    engine = make_engine(database_url)
    prepare_database(engine, catalogue)
    seed_history(engine, catalogue, tmp_path / "feeds")
    keys = issue_keys(engine)
    engine.dispose()
    app = app_for(database_url, tmp_path)
    with TestClient(app) as client:
        answer = client.post(
            "/v1/trades", json=own_trade_rows(), headers={"X-API-Key": keys.exchange}
        )
        assert answer.json()["accepted"] == len(OWN_TRADES), answer.text
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return Served(app, schema, keys, Tally(), database_url.split(":")[0])


def _fuzz(served: Served, operation, mode: GenerationMode, extra: list[dict]) -> None:
    strategy = operation.as_strategy(generation_mode=mode)
    if extra:
        fixed = [operation.as_strategy(generation_mode=mode, **kw) for kw in extra]
        strategy = st.one_of(strategy, st.one_of(fixed))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    @given(case=strategy)
    def run(case) -> None:
        served.send(case, mode.value)

    with contextlib.suppress(Unsatisfiable):  # no request of this mode exists
        run()


def test_every_operation_answers_as_documented(served, catalogue, capsys):
    extra = anchors(catalogue)
    operations = [result.ok() for result in served.schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        generation = served.schema.config.generation_for(operation=operation, phase="coverage")
        cases = served.schema.iter_coverage_cases(
            operation, generation_modes=list(MODES), generation_config=generation
        )
        for case in itertools.islice(cases, 0, None, COVERAGE_STRIDE):
            served.send(case, "coverage")
        for mode in MODES:
            _fuzz(served, operation, mode, extra.get(operation.label, []))

    tally = served.tally
    with capsys.disabled():
        print("\n" + tally.report(served.database))
    failures = [
        f"{label}: {title} (×{count})\n    {reproduce}"
        for (label, title), (count, reproduce) in sorted(tally.failures.items())
    ]
    assert not failures, "\n".join(failures)
    for operation in operations:
        label = operation.label
        assert tally.examples[(label, "positive")] >= 1, label
        has_inputs = bool(operation.path_parameters or operation.query or operation.body)
        if has_inputs and not label.startswith(("GET /v1/indices/{code}", "GET /v1/trades/")):
            # Hypothesis stops early only when every distinct input has been sent.
            assert tally.examples[(label, "positive")] >= min(EXAMPLES, 20), label
    assert not any(status >= 500 for (_, status) in tally.statuses)


def test_stateful_links_from_a_pushed_trade(served, capsys):
    """POST /v1/trades, then the links to read, amend and cancel its first trade."""
    machine = served.schema.as_state_machine()
    keys, tally = served.keys, served.tally

    pushed = itertools.count(1)

    class Machine(machine):
        def before_call(self, case):
            if case.operation.label != "POST /v1/trades":
                return
            serial = next(pushed)
            # Each batch starts with a valid trade of its own, so that its links reach a
            # trade. (Which rules may follow depends on the answer and the link's value, so
            # neither may depend on the server's history: a reused Idempotency-Key would
            # answer 409.)
            if isinstance(case.body, list):
                case.body = [{**own_trade_rows()[0], "trade_id": f"S-{serial}"}, *case.body]
            for name in list(case.headers or {}):
                if name.lower() == "idempotency-key":
                    case.headers[name] = f"{case.headers[name][:200]}-{serial}"

        def get_call_kwargs(self, case):
            return {"headers": {"Authorization": f"Bearer {key_for(case.operation.path, keys)}"}}

        def after_call(self, response, case):
            tally.examples[(case.operation.label, "stateful")] += 1
            tally.statuses[(case.operation.label, response.status_code)] += 1

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=STATEFUL_RUNS,
            stateful_step_count=6,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    with capsys.disabled():
        print("\n" + tally.report(served.database + " (stateful)"))
    linked = {label for (label, mode) in tally.examples if mode == "stateful"}
    assert "POST /v1/trades" in linked
    assert linked & {
        "GET /v1/trades/{trade_id}",
        "PUT /v1/trades/{trade_id}",
        "DELETE /v1/trades/{trade_id}",
    }, linked
    assert not any(status >= 500 for (_, status) in tally.statuses)

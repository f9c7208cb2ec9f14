"""Malformed trades pushed to ``POST /v1/trades`` in every format, gzipped or not.

Hypothesis builds each row from a valid trade (a positive control proves these are
accepted) and breaks it in one to three fields: NaN and infinities, -0.0, subnormal and
huge numbers, zero and negative quantities, far-future and pre-listing instants, epoch
milliseconds past year 9999, NUL bytes, 10 MB strings, spreadsheet formula prefixes,
participant codes with surrounding spaces or control characters, affiliation flags that are
no boolean, wrong types (JSON booleans, arrays and objects; typed Parquet and Arrow columns
of the wrong kind) and unknown codes. Every row is genuinely invalid under the published rules,
so each must come back rejected with a reason code that is one of its defects', and the
server must never answer 5xx.

Rows: ``run_size(1_500, 100_000)`` per database (``BCPI_FULL=1`` for 100,000); the
figures are printed.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import math
import string
from collections import Counter
from dataclasses import dataclass, field

import polars as pl
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.fields import MAX_QUANTITY, Reason
from store import models
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from tests.feeds_support import COLUMNS, MEDIA
from tests.support_api import app_for, issue_keys, run_size

FIELDS = (*COLUMNS, "buyer", "seller", "affiliated")
ROWS = run_size(1_500, 100_000)
BATCH = 500
HUGE = 10 * 1024 * 1024
HUGE_ROWS = run_size(2, 12)  # rows carrying a 10 MB string (each is its own request)
CODES = {r.value for r in Reason}

# Valid trades (prices inside the sanity band, units and currencies of the benchmark).
TEMPLATES = (
    {"commodity": "REBAR", "price": "3300", "quantity": "50", "currency": "CNY", "unit": "t"},
    {
        "commodity": "COTTON",
        "price": "14500",
        "quantity": "20",
        "currency": "CNY",
        "unit": "t",
        "grade": "3128B",
    },
    {
        "commodity": "IRONORE",
        "price": "101.5",
        "quantity": "35000",
        "currency": "USD",
        "unit": "dmt",
        "fe_pct": "62",
        "moisture_pct": "8",
    },
    {"commodity": "BEA", "price": "90", "quantity": "500", "currency": "CNY", "unit": "tCO2e"},
    {
        "commodity": "PTA",
        "price": "4700",
        "quantity": "30",
        "currency": "CNY",
        "unit": "t",
        "grade": "premium",
    },
    {"commodity": "PINELOG", "price": "1150", "quantity": "100", "currency": "CNY", "unit": "m3"},
)
VALID_INSTANTS = ("2025-03-03T10:00:00+08:00", "2025-06-02T01:30:00Z", "1740967200000")
KNOWN_CODES = {"REBAR", "COTTON", "IRONORE", "BEA", "CEA", "PTA", "PINELOG", "HRC", "METHANOL"}
KNOWN_UNITS = {"t", "kg", "lb", "dmt", "wmt", "tCO2e", "m3"}
LISTED = dt.datetime(2019, 12, 30, tzinfo=dt.UTC)  # the day before every template's listing
MIN_MS, MAX_MS = -62_135_596_800_000, 253_402_300_799_999
# Epoch milliseconds that, scaled to microseconds in 64 bits, wrap around to 2025-03-03.
WRAPPING_EPOCH_MS = str((1_740_996_000_000_384 + 2**64) // 1000)


@dataclass(frozen=True)
class Huge:
    """A 10 MB string of one character (made at send time: Hypothesis cannot draw it)."""

    char: str


@dataclass
class Row:
    values: dict
    codes: frozenset  # the reason codes of its defects: the answer must be one of them
    fields: frozenset


# Defect strategies: (reason code, value). Values are text, or JSON-able Python objects
# that each format writes its own way (a float NaN is the token NaN in JSON, "nan" in CSV).
NOT_FINITE = st.sampled_from(
    ["NaN", "nan", "-nan", "inf", "-inf", "Infinity", "-Infinity", "+inf", "1e309", "-1e999"]
) | st.sampled_from([math.nan, math.inf, -math.inf])
NOT_A_NUMBER = (
    st.sampled_from(["abc", "1,5", "0x10", "1_000", " 3300", "3300 ", "$3300", "3.3.0", "1e"])
    | st.text(max_size=12).map(lambda t: t + "x")
    | st.sampled_from([True, False, [1], {"a": 1}, [], {}])
)
MISSING = st.sampled_from([None, ""])
NON_POSITIVE = st.sampled_from(["0", "-0", "-0.0", -0.0, 0.0]) | st.floats(
    max_value=0.0, allow_nan=False, allow_infinity=False
)
SUBNORMAL = st.floats(min_value=5e-324, max_value=2.2250738585072014e-308)
HUGE_NUMBER = st.sampled_from(["1e308", 1.7976931348623157e308]) | st.floats(
    min_value=1e6, max_value=1.7976931348623157e308
)
TOO_MANY_UNITS = st.sampled_from(["1e308", 1e13]) | st.floats(
    min_value=MAX_QUANTITY * 1.001, max_value=1.7976931348623157e308
)
FUTURE = st.datetimes(min_value=dt.datetime(2100, 1, 1), max_value=dt.datetime(9999, 12, 30))
PAST = st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=LISTED.replace(tzinfo=None))


def _iso(moment: dt.datetime) -> str:
    return moment.replace(tzinfo=dt.UTC).isoformat()


def _ms(moment: dt.datetime) -> str:
    return str(int(moment.replace(tzinfo=dt.UTC).timestamp() * 1000))


TEXT_DEFECTS = st.one_of(
    st.tuples(st.text(max_size=8), st.text(max_size=8)).map(lambda p: p[0] + "\x00" + p[1]),
    st.text(min_size=65, max_size=300).filter(lambda t: len(t) > 64),
    st.tuples(st.sampled_from("=+-@"), st.text(max_size=20)).map("".join),
    st.sampled_from(string.ascii_letters).map(Huge),
)


def field_defects(template: dict) -> dict[str, st.SearchStrategy]:
    """Per field, a strategy of (code, value) that breaks only that field of ``template``."""
    number = {
        "price": [
            ("not_finite", NOT_FINITE),
            ("bad_type", NOT_A_NUMBER),
            ("missing_field", MISSING),
            ("non_positive_price", NON_POSITIVE),
            ("price_out_of_band", SUBNORMAL | HUGE_NUMBER | st.floats(1e-300, 1.0)),
        ],
        "quantity": [
            ("not_finite", NOT_FINITE),
            ("bad_type", NOT_A_NUMBER),
            ("missing_field", MISSING),
            ("non_positive_quantity", NON_POSITIVE),
            ("quantity_out_of_band", TOO_MANY_UNITS),
        ],
    }
    defects = {
        name: st.one_of([st.tuples(st.just(code), values) for code, values in choices])
        for name, choices in number.items()
    }
    defects["traded_at"] = st.one_of(
        st.tuples(st.just("future_timestamp"), FUTURE.map(_iso) | FUTURE.map(_ms)),
        st.tuples(st.just("before_listing"), PAST.map(_iso) | PAST.map(_ms)),
        st.tuples(
            st.just("bad_type"),
            st.integers(MAX_MS + 1, 2**63 - 1).map(str)
            | st.integers(-(2**63), MIN_MS - 1).map(str)
            | st.just(WRAPPING_EPOCH_MS)
            | st.sampled_from(["2025-03-03T10:00:00", "2025-02-30T10:00:00Z", "yesterday"])
            | st.text(max_size=12).map(lambda t: t + "x"),
        ),
        st.tuples(st.just("missing_field"), MISSING),
    )
    defects["trade_id"] = st.one_of(
        st.tuples(st.just("bad_text"), TEXT_DEFECTS),
        st.tuples(st.just("bad_text"), st.sampled_from([" A1", "A1 ", "\tA1", "A1\n"])),
        st.tuples(st.just("missing_field"), MISSING),
    )
    defects["commodity"] = st.one_of(
        st.tuples(st.just("bad_text"), TEXT_DEFECTS),
        st.tuples(
            st.just("unknown_commodity"),
            st.text(string.ascii_letters + string.digits + " .", min_size=1, max_size=12).filter(
                lambda t: t not in KNOWN_CODES
            ),
        ),
    )
    defects["unit"] = st.tuples(
        st.just("unit_mismatch"),
        st.sampled_from(["kgs", "tonne", "bbl", "m³", "T", "MT"])
        | st.text(string.ascii_letters, min_size=1, max_size=6).filter(
            lambda t: t not in KNOWN_UNITS
        ),
    )
    defects["currency"] = st.tuples(
        st.just("currency_mismatch"),
        st.sampled_from(["EUR", "usd", "RMB", "CNH", "XAU"])
        | st.text(string.ascii_uppercase, min_size=1, max_size=4).filter(
            lambda t: t not in {"CNY", "USD"}
        ),
    )
    defects["action"] = st.tuples(
        st.just("unsupported_action"),
        st.text(string.ascii_letters, min_size=1, max_size=8).filter(
            lambda t: t not in {"new", "cancel", "amend"}
        ),
    )
    for side in ("buyer", "seller"):
        defects[side] = st.one_of(
            st.tuples(st.just("bad_text"), TEXT_DEFECTS),
            st.tuples(
                st.just("bad_text"),
                st.sampled_from([" B1", "B1 ", "B\u3000", "B\x071", "B\n1", "\x7fB", "B\x85"]),
            ),
        )
    defects["affiliated"] = st.tuples(
        st.just("bad_type"),
        st.sampled_from(["yes", "no", "Y", "N", "2", "-1", "1.0", " true", "false ", "真"])
        | st.sampled_from([2, -1, 0.5, [True], {"a": 1}]),
    )
    if template["commodity"] == "COTTON":
        defects["grade"] = st.tuples(
            st.just("quality_out_of_range"), st.sampled_from(["9999Z", "3128", "3128b", "A"])
        )
    if template["commodity"] == "PTA":
        defects["grade"] = st.tuples(st.just("bad_text"), TEXT_DEFECTS)
    if template["commodity"] == "IRONORE":
        defects["fe_pct"] = st.tuples(
            st.just("quality_out_of_range"), st.floats(0.01, 59.9) | st.floats(63.6, 100.0)
        )
    return defects


DEFECTS = [field_defects(template) for template in TEMPLATES]


@st.composite
def malformed_row(draw) -> Row:
    which = draw(st.integers(0, len(TEMPLATES) - 1))
    template, defects = TEMPLATES[which], DEFECTS[which]
    broken = draw(st.lists(st.sampled_from(sorted(defects)), min_size=1, max_size=3, unique=True))
    values = {**template, "traded_at": draw(st.sampled_from(VALID_INSTANTS))}
    codes = set()
    for name in broken:
        code, value = draw(defects[name])
        values[name] = value
        codes.add(code)
    return Row(values, frozenset(codes), frozenset(broken))


def _cell(value) -> str | None:
    """A value as a text cell (CSV, and the text columns of Parquet and Arrow)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value)


def encode(rows: list[dict], fmt: str) -> bytes:
    names = [c for c in FIELDS if any(c in r for r in rows)]
    if fmt == "json":
        return json.dumps(rows, ensure_ascii=False).encode()
    if fmt == "ndjson":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    frame = pl.DataFrame(
        {n: [_cell(r.get(n)) for r in rows] for n in names}, schema=dict.fromkeys(names, pl.String)
    )
    out = io.BytesIO()
    {"csv": frame.write_csv, "parquet": frame.write_parquet, "arrow": frame.write_ipc_stream}[fmt](
        out
    )
    return out.getvalue()


@dataclass
class Ledger:
    """What was sent and what came back."""

    rows: Counter = field(default_factory=Counter)  # by format
    requests: Counter = field(default_factory=Counter)  # by status
    codes: Counter = field(default_factory=Counter)
    accepted: int = 0
    with_code: int = 0
    huge_sent: int = 0
    failures: list = field(default_factory=list)

    def fail(self, message: str) -> None:
        if len(self.failures) < 30:
            self.failures.append(message[:600])


class Pusher:
    def __init__(self, client: TestClient, engine, key: str, ledger: Ledger) -> None:
        self.client, self.engine, self.key, self.ledger = client, engine, key, ledger
        self.pending: dict[str, list[Row]] = {fmt: [] for fmt in MEDIA}
        self.serial = 0

    def add(self, fmt: str, row: Row) -> None:
        self.pending[fmt].append(row)
        if len(self.pending[fmt]) >= BATCH or any(isinstance(v, Huge) for v in row.values.values()):
            self.flush(fmt)

    def flush(self, fmt: str, *, compress: bool | None = None) -> None:
        rows, self.pending[fmt] = self.pending[fmt], []
        if rows:
            self.serial += 1
            self.send(fmt, rows, self.serial % 2 == 1 if compress is None else compress)

    def _materialise(self, row: Row, index: int) -> dict:
        values = dict(row.values)
        if "trade_id" not in row.fields:
            values["trade_id"] = f"Z{self.serial}-{index}"
        for name, value in values.items():
            if isinstance(value, Huge):
                if self.ledger.huge_sent < HUGE_ROWS:
                    self.ledger.huge_sent += 1
                    values[name] = value.char * HUGE
                else:
                    values[name] = value.char * 65
        return values

    def send(self, fmt: str, rows: list[Row], compress: bool) -> None:
        body = encode([self._materialise(r, i) for i, r in enumerate(rows)], fmt)
        headers = {"X-API-Key": self.key, "Content-Type": MEDIA[fmt]}
        if compress:
            body, headers["Content-Encoding"] = gzip.compress(body, 1), "gzip"
        answer = self.client.post("/v1/trades", content=body, headers=headers)
        self.check(fmt, rows, answer)

    def check(self, fmt: str, rows: list[Row], answer) -> None:
        ledger = self.ledger
        ledger.rows[fmt] += len(rows)
        ledger.requests[answer.status_code] += 1
        if answer.status_code != 200:
            ledger.fail(f"{fmt}: {answer.status_code} {answer.text[:300]}")
            return
        result = answer.json()
        ledger.accepted += result["accepted"] + result["duplicates"]
        counted = Counter(r["code"] for r in result["rejections"])
        if (result["rows"], result["rejected"], result["by_reason"]) != (
            len(rows),
            len(result["rejections"]),
            dict(counted),
        ):
            ledger.fail(
                f"{fmt}: the answer's counts disagree with its {len(rows)} rows and"
                f" {len(result['rejections'])} rejections: rows {result['rows']}, rejected"
                f" {result['rejected']}, by_reason {result['by_reason']}"
            )
        by_row = {r["row"]: r for r in result["rejections"]}
        for number, row in enumerate(rows, start=1):
            rejection = by_row.get(number)
            if rejection is None:
                ledger.fail(f"{fmt}: row {number} {row.values!r:.300} was not rejected")
                continue
            code = rejection["code"]
            ledger.codes[code] += 1
            if code in CODES:
                ledger.with_code += 1
            if code not in row.codes:
                ledger.fail(
                    f"{fmt}: row {number} broken as {sorted(row.codes)} in {sorted(row.fields)}"
                    f" answered {code} on {rejection['field']}: {row.values!r:.300}"
                )
            elif len(row.fields) == 1 and rejection["field"] not in row.fields:
                ledger.fail(f"{fmt}: row {number} {sorted(row.fields)} named {rejection}")


# Typed Parquet and Arrow columns: (field, polars type, strategy of values, code).
def _is_float(value) -> bool:
    return isinstance(value, float)


TYPED = (
    ("price", pl.Boolean, st.booleans(), "bad_type"),
    ("price", pl.List(pl.Int64), st.lists(st.integers(0, 9), max_size=3), "bad_type"),
    ("price", pl.Float64, NON_POSITIVE.filter(_is_float), "non_positive_price"),
    ("price", pl.Float64, SUBNORMAL | st.floats(1e6, 1.7976931348623157e308), "price_out_of_band"),
    ("quantity", pl.Float64, st.sampled_from([math.nan, math.inf, -math.inf]), "not_finite"),
    ("quantity", pl.Float64, TOO_MANY_UNITS.filter(_is_float), "quantity_out_of_band"),
    ("traded_at", pl.Datetime("us"), st.datetimes(), "bad_type"),  # no time zone
    ("traded_at", pl.Datetime("ms", "UTC"), FUTURE, "future_timestamp"),
    ("traded_at", pl.Datetime("ms", "UTC"), PAST, "before_listing"),
    ("traded_at", pl.Int64, st.integers(MAX_MS + 1, 2**63 - 1), "bad_type"),
    ("traded_at", pl.UInt64, st.integers(2**63, 2**64 - 1), "bad_type"),
    ("traded_at", pl.Duration("ms"), st.timedeltas(), "bad_type"),
    ("traded_at", pl.Date, st.dates(), "bad_type"),
    ("seq", pl.Float64, st.floats(allow_nan=False), "bad_type"),
    ("trade_id", pl.Float64, st.floats(), "bad_type"),
    ("trade_id", pl.Binary, st.binary(max_size=8), "bad_type"),
    ("buyer", pl.Float64, st.floats(), "bad_type"),
    ("seller", pl.Date, st.dates(), "bad_type"),
    ("affiliated", pl.Float64, st.floats(), "bad_type"),
    (
        "affiliated",
        pl.Int64,
        st.integers(-(2**63), 2**63 - 1).filter(lambda n: n not in (0, 1)),
        "bad_type",
    ),
    ("affiliated", pl.List(pl.Boolean), st.lists(st.booleans(), max_size=2), "bad_type"),
)


@st.composite
def typed_batch(draw) -> tuple[str, pl.DataFrame, str]:
    name, dtype, values, code = draw(st.sampled_from(TYPED))
    column = draw(st.lists(values, min_size=1, max_size=40))
    base = {k: v for k, v in TEMPLATES[0].items() if k != name}
    n = len(column)
    frame = pl.DataFrame(
        {
            "trade_id": [f"T{i}" for i in range(n)],
            "traded_at": [VALID_INSTANTS[0]] * n,
            **{k: [v] * n for k, v in base.items()},
        }
    )
    if name == "traded_at" and dtype == pl.Datetime("ms", "UTC"):
        column = [v.replace(tzinfo=dt.UTC) for v in column]
    if isinstance(dtype, pl.Duration):  # from whole milliseconds
        millis = [td // dt.timedelta(milliseconds=1) for td in column]
        series = pl.Series(name, millis, dtype=pl.Int64).cast(dtype)
    else:
        series = pl.Series(name, column, dtype=dtype)
    frame = frame.with_columns(series)
    return draw(st.sampled_from(["parquet", "arrow"])), frame, code


@pytest.fixture
def pusher(database_url, catalogue, tmp_path):
    engine = make_engine(database_url)
    prepare_database(engine, catalogue)
    keys = issue_keys(engine)
    with TestClient(app_for(database_url, tmp_path)) as client:
        yield Pusher(client, engine, keys.exchange, Ledger())
    engine.dispose()


def _stored_trades(pusher: Pusher) -> int:
    with session_scope(pusher.engine) as session:
        return session.scalar(select(func.count()).select_from(models.Trade))


FUZZ_SETTINGS = settings(
    deadline=None,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def test_malformed_rows_in_every_format_are_all_rejected_with_a_reason(
    pusher, database_url, capsys
):
    # The positive control: the templates, untouched, are valid trades in every format.
    for fmt in MEDIA:
        control = [
            {**t, "trade_id": f"C-{fmt}-{i}", "traded_at": VALID_INSTANTS[i % 3]}
            for i, t in enumerate(TEMPLATES)
        ]
        answer = pusher.client.post(
            "/v1/trades",
            content=encode(control, fmt),
            headers={"X-API-Key": pusher.key, "Content-Type": MEDIA[fmt]},
        )
        assert answer.json()["accepted"] == len(TEMPLATES), (fmt, answer.text)
    stored = _stored_trades(pusher)
    ledger = pusher.ledger

    def push(fmt: str, rows: list[Row]) -> None:
        for row in rows:
            pusher.add(fmt, row)

    def push_typed(batch, compress: bool) -> None:
        fmt, frame, code = batch
        out = io.BytesIO()
        (frame.write_parquet if fmt == "parquet" else frame.write_ipc_stream)(out)
        body, headers = out.getvalue(), {"X-API-Key": pusher.key, "Content-Type": MEDIA[fmt]}
        if compress:
            body, headers["Content-Encoding"] = gzip.compress(body, 1), "gzip"
        rows = [Row({}, frozenset({code}), frozenset()) for _ in range(frame.height)]
        pusher.check(
            f"{fmt} (typed)", rows, pusher.client.post("/v1/trades", content=body, headers=headers)
        )

    def run(test, strategies: dict, examples: int) -> None:
        settings(FUZZ_SETTINGS, max_examples=examples)(given(**strategies)(test))()

    typed_target = ROWS // 10
    while sum(n for f, n in ledger.rows.items() if "typed" in f) < typed_target:
        run(push_typed, {"batch": typed_batch(), "compress": st.booleans()}, typed_target // 20)
    rows = st.lists(malformed_row(), max_size=30)
    while sum(ledger.rows.values()) + sum(map(len, pusher.pending.values())) < ROWS:
        run(push, {"fmt": st.sampled_from(sorted(MEDIA)), "rows": rows}, max(20, ROWS // 15))
    for fmt in MEDIA:
        pusher.flush(fmt)

    sent = sum(ledger.rows.values())
    server_errors = sum(n for status, n in ledger.requests.items() if status >= 500)
    with capsys.disabled():
        print(
            f"\nmalformed rows on {database_url.split(':')[0]}: {sent} sent in"
            f" {sum(ledger.requests.values())} requests ({dict(sorted(ledger.rows.items()))});"
            f" accepted {ledger.accepted}; with a reason code {ledger.with_code}"
            f" ({100 * ledger.with_code / sent:.1f}%); {server_errors} × 5xx;"
            f" {ledger.huge_sent} rows with a 10 MB string;"
            f" statuses {dict(ledger.requests)}; codes {dict(ledger.codes.most_common())}"
        )
    assert not ledger.failures, "\n".join(ledger.failures)
    assert sent >= ROWS
    assert ledger.accepted == 0 and ledger.with_code == sent and server_errors == 0
    assert _stored_trades(pusher) == stored
    assert ledger.huge_sent == HUGE_ROWS

"""The Polars parser and a plain-Python reference (tests/naive_feed.py) read the same
generated CSV and NDJSON bodies and must agree on every row: accepted or rejected, the
reason where only one rule is broken (else Polars's reason is one of the broken rules),
the parsed values (instants to the microsecond, numbers to the bit, text as sent) and,
for accepted rows, the normalised price and quantity (relative error ≤ 1e-12) and whether
the trade is held for an FX rate.

Bodies: ``run_size(150, 3_000)`` per format (``BCPI_FULL=1`` for 3,000); the figures are
printed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from dataclasses import dataclass

import exchange_calendars
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from core.calendar import Calendar
from core.errors import IngestError
from core.methodology import in_force
from ingest.readers import read_body
from ingest.rules import FxTable, build_rules
from ingest.validate import REJECT_CODE, REJECT_FIELD, validated_frame
from tests import naive_feed
from tests.support_api import run_size

BODIES = run_size(150, 3_000)
ZONE = "Asia/Shanghai"
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
TOLERANCE = dt.timedelta(minutes=5)
FIRST, LAST = dt.datetime(2025, 1, 2), dt.datetime(2026, 5, 31)
# USD rates on the first days only: trades in USD later are held for their rate.
FX = {(dt.date(2025, 1, 2) + dt.timedelta(days=d), "USD"): 7.1 + d / 100 for d in range(60)}
# Publication days (methodology 2025.2, the mainland calendar) are the Shanghai exchange's
# sessions; tests/test_calendar.py holds the two equal over 2025 and 2026, the span the
# window days are compared over. The cut-off is 15:00 Beijing time (METHODOLOGY.md).
SESSIONS_FROM, SESSIONS_TO = dt.date(2025, 1, 1), dt.date(2026, 12, 31)
CUTOFF = dt.time(15)
PARSED = ("traded_at", "price", "quantity", "seq", "affiliated", *naive_feed.NUMERIC_QUALITY)
COMPARED = (*PARSED, *naive_feed.TEXTS)


@dataclass(frozen=True)
class JsonNumber:
    """A number written as this literal in NDJSON (and as this text in CSV)."""

    text: str


@pytest.fixture(scope="module")
def parsers(catalogue):
    ids = {c.code: i + 1 for i, c in enumerate(catalogue.commodities)}
    rules = build_rules(catalogue, ids, Calendar(in_force()))
    fx = FxTable.from_rows([(day, cur, rate) for (day, cur), rate in FX.items()])
    xshg = exchange_calendars.get_calendar("XSHG")
    sessions = [
        t.date() for t in xshg.sessions_in_range(SESSIONS_FROM.isoformat(), SESSIONS_TO.isoformat())
    ]
    return catalogue, rules, fx, (SESSIONS_FROM, sessions)


# Generation: mostly plausible trades, each field sometimes replaced by an edge case.
def _decimal(value: float) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [repr(value), f"{value:.2f}", f"{value:.6e}", f"{value:E}", f"+{value!r}", f"{value:g}"]
    )


NUMBER_EDGES = st.one_of(
    st.from_regex(r"[+-]?(\d{1,4}\.?\d{0,3}|\.\d{1,3})([eE][+-]?\d{1,3})?", fullmatch=True),
    st.sampled_from(
        ["nan", "-inf", "Infinity", "INF", "1e309", "-0", "0", "1_000", " 5", "5 ", "0x10", "1e"]
    ),
    st.sampled_from(["1.5e3.2", "e5", ".", "+", "--1", "１２", "1,5", "snan", "infin", ""]),
    st.text(max_size=6),
)
INTEGER_EDGES = st.one_of(
    st.integers(-(2**64), 2**64).map(str),
    st.sampled_from(["+7", "007", "-0", "7.0", "1e3", " 7", "7 ", "", "٧"]),
)


def _rfc3339(moment: dt.datetime, style: tuple) -> str:
    separator, digits, offset_minutes, colon, zulu = style
    zone = dt.timezone(dt.timedelta(minutes=offset_minutes))
    local = moment.replace(tzinfo=dt.UTC).astimezone(zone)
    text = f"{local.year:04d}-{local:%m-%d}{separator}{local:%H:%M:%S}"
    if digits:
        text += "." + f"{local.microsecond:06d}{local.microsecond % 7:03d}"[:digits]
    if zulu and offset_minutes == 0:
        return text + zulu
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return text + f"{sign}{hours:02d}{':' if colon else ''}{minutes:02d}"


STYLES = st.tuples(
    st.sampled_from(["T", "t", " "]),
    st.integers(0, 9),
    st.integers(-23 * 60 - 59, 23 * 60 + 59),
    st.booleans(),
    st.sampled_from(["", "Z", "z"]),
)
INSTANT_EDGES = st.one_of(
    st.tuples(st.datetimes(dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30)), STYLES).map(
        lambda p: _rfc3339(*p)
    ),
    st.datetimes(dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30)).map(
        lambda m: str(int(m.replace(tzinfo=dt.UTC).timestamp() * 1000))
    ),
    st.integers(-(2**63), 2**63 - 1).map(str),
    st.sampled_from(
        [
            "2025-03-03T10:00:00",
            "2025-02-30T10:00:00Z",
            "2025-03-03T10:00:00+24:00",
            "2025-03-03T10:00:00+08:60",
            "2025-03-03T10:00:00.Z",
            "2025-03-03T10:00:00+08:00:00",
            "2025-03-03T10:00:00Z ",
            "+1740967200000",
            "",
        ]
    ),
)
TEXT_EDGES = st.one_of(
    st.text(max_size=10),
    st.text(min_size=60, max_size=70),
    st.tuples(st.sampled_from("=+-@\t\r \u3000\x1c\u200b"), st.text(max_size=5)).map("".join),
    st.tuples(st.text(max_size=5), st.sampled_from(" \t\u2028\x85\u00a0\x1f")).map("".join),
    st.just("a\x00b"),
    st.just(""),
)
# Text of grades stays clear of quotes, backslashes and control characters.
GRADE_TEXT = st.text(st.characters(blacklist_categories=["Cc", "Cs"], blacklist_characters='"\\'))
PARTICIPANT_CODES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,15}", fullmatch=True)
BOOLEANS = st.sampled_from(["true", "false", "TRUE", "False", "1", "0"]) | st.booleans()
BOOLEAN_EDGES = st.sampled_from(["yes", "no", "2", "-1", "t", "01", " true", "true ", "1.0", ""])


@st.composite
def trade(draw, catalogue) -> dict:
    c = draw(st.sampled_from(catalogue.commodities))
    n = in_force().commodity(c.code).normalisation
    low, high = in_force().commodity(c.code).price_band
    row = {
        "trade_id": draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,11}", fullmatch=True)),
        "commodity": c.code,
        "traded_at": _rfc3339(
            draw(st.datetimes(FIRST, LAST)), draw(STYLES.filter(lambda s: s[0] != " "))
        ),
        "price": draw(st.floats(low * 1.01, high * 0.99).flatmap(_decimal)),
        "quantity": draw(st.floats(1.0, 1e6).flatmap(_decimal)),
        "currency": draw(st.sampled_from([c.currency, *n.currencies])),
        "unit": draw(st.sampled_from([c.unit, *n.units])),
    }
    if row["unit"] in n.wet_units or draw(st.booleans()):
        row["moisture_pct"] = draw(st.floats(0, 20).flatmap(_decimal))
    if n.pro_rata is not None:
        row["fe_pct"] = draw(st.floats(59.5, 64.0).map(repr))
    for penalty in n.penalties:
        if draw(st.booleans()):
            row[penalty.attribute] = draw(st.floats(0, penalty.above * 2).map(repr))
    for name, table in n.differentials.items():
        if draw(st.booleans()):
            row[name] = draw(st.sampled_from(sorted(table)) | st.just("9999"))
    if draw(st.booleans()):
        row["seq"] = str(draw(st.integers(0, 10**9)))
    if draw(st.integers(0, 5)) == 0:
        row["action"] = draw(st.sampled_from(["new", "cancel", "amend"]))
    if draw(st.booleans()):
        row["buyer"], row["seller"] = draw(PARTICIPANT_CODES), draw(PARTICIPANT_CODES)
    if draw(st.booleans()):
        row["affiliated"] = draw(BOOLEANS)
    # Edge cases in a few fields.
    for name in draw(st.lists(st.sampled_from(naive_feed.FIELDS), max_size=3, unique=True)):
        if name in naive_feed.NUMBERS:
            value = draw(NUMBER_EDGES | st.sampled_from([None, ""]))
        elif name == "seq":
            value = draw(INTEGER_EDGES)
        elif name == "traded_at":
            value = draw(INSTANT_EDGES)
        elif name == "grade":
            value = draw(GRADE_TEXT)
        elif name == "action":
            value = draw(st.sampled_from(["NEW", "Cancel", "delete", "", " new"]) | TEXT_EDGES)
        elif name == "affiliated":
            value = draw(BOOLEAN_EDGES | TEXT_EDGES)
        else:
            value = draw(TEXT_EDGES | st.sampled_from([None, c.code.lower(), "CNH", "kgs"]))
        row[name] = value
    if draw(st.integers(0, 3)) == 0:  # some numbers as JSON numbers in NDJSON
        for name in ("price", "quantity"):
            text = row.get(name)
            if isinstance(text, str) and naive_feed._NUMBER.fullmatch(text):
                number = float(text)
                if math.isfinite(number):
                    row[name] = JsonNumber(json.dumps(number))
    return row


def csv_body(rows: list[dict], newline: str, columns: list[str]) -> bytes:
    def cell(value) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        text = value.text if isinstance(value, JsonNumber) else value
        if text == "" or any(ch in text for ch in ',"\r\n'):
            return '"' + text.replace('"', '""') + '"'
        return text

    lines = [",".join(columns)]
    lines += [",".join(cell(r.get(name)) for name in columns) for r in rows]
    return (newline.join(lines) + newline).encode()


def ndjson_body(rows: list[dict], ascii_only: bool, newline: str) -> bytes:
    def member(name, value) -> str:
        text = (
            value.text
            if isinstance(value, JsonNumber)
            else json.dumps(value, ensure_ascii=ascii_only)
        )
        return json.dumps(name) + ":" + text

    return "".join(
        "{" + ",".join(member(k, v) for k, v in r.items()) + "}" + newline for r in rows
    ).encode()


@dataclass
class Tally:
    bodies: Counter
    rows: Counter
    accepted: Counter
    same_code: Counter
    window_days: Counter
    mismatches: list


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    return a == b


def compare(parsers, body: bytes, fmt: str, tally: Tally) -> None:
    catalogue, rules, fx, sessions = parsers
    text = body.decode("utf-8")
    try:
        expected_rows = naive_feed.read_csv(text) if fmt == "csv" else naive_feed.read_ndjson(text)
    except naive_feed.Unreadable as exc:
        expected_rows = exc
    try:
        frame = read_body(body, fmt)
    except IngestError as exc:
        frame = exc
    tally.bodies[fmt] += 1
    if isinstance(expected_rows, Exception) or isinstance(frame, Exception):
        if isinstance(expected_rows, Exception) != isinstance(frame, Exception):
            tally.mismatches.append(
                f"{fmt} body: reference {expected_rows!r:.200}, Polars {frame!r:.200}"
            )
        return
    present = set(frame.columns)
    checked = validated_frame(
        frame.lazy(), rules, fx, now=NOW, future_tolerance=TOLERANCE
    ).collect()
    expected = naive_feed.check_rows(
        expected_rows,
        catalogue,
        in_force(),
        FX,
        now=NOW,
        tolerance=TOLERANCE,
        zone=ZONE,
        present=present,
        publication_days=sessions,
        cutoff=CUTOFF,
    )
    if checked.height != len(expected):
        tally.mismatches.append(f"{fmt}: {checked.height} rows read, reference {len(expected)}")
        return
    for got, want in zip(checked.iter_rows(named=True), expected, strict=True):
        tally.rows[fmt] += 1
        where = f"{fmt} row {want.row} {expected_rows[want.row - 1]!r:.400}"
        code, field = got[REJECT_CODE], got[REJECT_FIELD]
        if (code is None) != (not want.failures):
            tally.mismatches.append(f"{where}: Polars {code} on {field}, reference {want.failures}")
            continue
        if code is not None:
            single = len(want.failures) == 1
            if (single and (field, code) != want.failures[0]) or code not in want.codes:
                tally.mismatches.append(
                    f"{where}: Polars {code} on {field}, reference {want.failures}"
                )
            else:
                tally.same_code[fmt] += single
        for name in COMPARED:
            if name not in present:
                continue
            if name in PARSED:
                ours, theirs = got[name], want.parsed[name]
            else:  # text as sent (empty is absent); the reference's action is not defaulted
                ours = got[f"{name}__raw"] or None
                theirs = expected_rows[want.row - 1].get(name)
            if not _same(ours, theirs):
                tally.mismatches.append(
                    f"{where}: {name} Polars {ours!r:.80}, reference {theirs!r:.80}"
                )
        if code is None:
            tally.accepted[fmt] += 1
            if got["action"] == "cancel":
                continue
            for name, ours, theirs in (
                ("price_n", got["price_n"], want.price_n),
                ("quantity_n", got["quantity_n"], want.quantity_n),
            ):
                if got["held"] and name == "price_n":
                    continue
                if theirs is None or ours is None or abs(ours - theirs) > 1e-12 * abs(theirs):
                    tally.mismatches.append(
                        f"{where}: {name} Polars {ours!r}, reference {theirs!r}"
                    )
            if got["held"] != want.held:
                tally.mismatches.append(
                    f"{where}: held Polars {got['held']}, reference {want.held}"
                )
            if got["trade_date"] != want.trade_date:
                tally.mismatches.append(
                    f"{where}: trade_date Polars {got['trade_date']}, reference {want.trade_date}"
                )
            if want.window_day is not None:
                tally.window_days[fmt] += 1
                if got["window_day"] != want.window_day:
                    tally.mismatches.append(
                        f"{where}: window_day Polars {got['window_day']},"
                        f" reference {want.window_day}"
                    )


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_polars_and_the_reference_parser_agree_row_by_row(parsers, fmt, capsys):
    catalogue = parsers[0]
    tally = Tally(Counter(), Counter(), Counter(), Counter(), Counter(), [])
    rows = st.lists(trade(catalogue), min_size=1, max_size=25)

    @settings(
        max_examples=BODIES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(rows=rows, newline=st.sampled_from(["\n", "\r\n"]), flag=st.booleans(), data=st.data())
    def run(rows, newline, flag, data) -> None:
        if fmt == "csv":
            names = [n for n in naive_feed.FIELDS if any(n in r for r in rows)]
            columns = data.draw(st.permutations(names))
            body = csv_body(rows, newline, list(columns))
        else:
            body = ndjson_body(rows, flag, newline)
        compare(parsers, body, fmt, tally)

    run()
    with capsys.disabled():
        print(
            f"\ndifferential {fmt}: {tally.bodies[fmt]} bodies, {tally.rows[fmt]} rows,"
            f" {tally.accepted[fmt]} accepted by both, {tally.same_code[fmt]} with the same"
            f" single reason, {tally.window_days[fmt]} window days compared,"
            f" {len(tally.mismatches)} disagreements"
        )
    assert not tally.mismatches, "\n".join(tally.mismatches[:25])
    assert tally.accepted[fmt] > tally.rows[fmt] // 10  # the generator reaches valid trades
    # Most accepted trades are stamped in 2025-2026, where the window days are compared.
    assert tally.window_days[fmt] > tally.accepted[fmt] // 2

"""A slow, obvious reader and checker of trade feeds, written from the published rules
(README "Exchange feeds", the catalogue) in plain Python: no Polars, no code of ``ingest``.

The differential test runs it beside the Polars parser on the same bytes. The rules, as
stated here:

- CSV (RFC 4180): the first record names the columns; a field is text; an empty field
  (quoted or not) is absent. NDJSON: one JSON object per ``\\n``-terminated line, blank
  lines skipped; a string is its text, a number its literal text, ``true``/``false`` their
  names, ``null`` or ``""`` absent, an array or object its compact JSON text.
- A number is ``[+-]`` digits with an optional fraction and exponent, or ``nan``, ``inf``
  or ``infinity`` (any case, with a sign), read with correct rounding; an integer is
  ``[+-]`` digits within 64 bits. Nothing else: no spaces, underscores or hex.
- ``traded_at`` is epoch milliseconds (an integer) or RFC 3339: ``YYYY-MM-DD``, ``T`` (or
  ``t`` or a space), ``HH:MM:SS``, an optional fraction (digits past microseconds dropped)
  and ``Z`` or an offset ``±HH:MM`` / ``±HHMM``; years 1 to 9999.
- ``affiliated`` is ``true`` or ``false`` in any case, or ``1`` or ``0``; ``buyer`` and
  ``seller`` are text.
- Checks (a row fails each one whose inputs it has and that does not hold): required fields
  present; text without NUL, at most 64 characters, no spreadsheet formula start (``= + -
  @`` tab, CR), a ``trade_id`` without surrounding white space, and ``buyer`` and
  ``seller`` without surrounding white space or any control character; numbers that parse
  and are finite; ``affiliated`` a boolean; a known action (absent: ``new``), commodity,
  unit and currency of the commodity; a wet unit needs ``moisture_pct``; price and
  quantity > 0; normalised quantity at most 10¹²; quality attributes within the
  commodity's ranges and differential tables;
  normalised price within the commodity's band; not after now + tolerance; not before the
  commodity's listing date (Beijing calendar day). A cancel is checked only for its
  identity (trade_id, action, seq).
- Normalised: ``q = quantity × unit factor × dry`` with ``dry = 1 − moisture/100`` for a wet
  unit; price per benchmark unit ``price / (unit factor × dry) × fx × basis/attribute −
  penalties − differentials``; a currency without a rate that day is held.
- Among rows that pass, a later ``new`` row with an earlier ``trade_id`` is
  ``duplicate_in_batch``.
- Dates (METHODOLOGY.md, "Publication calendar"): a trade's ``trade_date`` is the Beijing
  calendar date of its stamp; its ``window_day`` is the first publication day on or after
  that date, or after the next day when the stamp is later than the cut-off (15:00): the
  window of a publication day runs from the previous one's cut-off (exclusive) to its own
  (inclusive). The publication days are handed in (the tests take the Shanghai exchange's
  sessions from ``exchange_calendars``); past them the window day is not known here.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import unicodedata
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

REQUIRED = ("trade_id", "commodity", "traded_at", "price", "quantity", "currency", "unit")
NUMERIC_QUALITY = (
    "fe_pct",
    "moisture_pct",
    "sio2_pct",
    "al2o3_pct",
    "p_pct",
    "diameter_mm",
    "thickness_mm",
)
NUMBERS = ("price", "quantity", *NUMERIC_QUALITY)
PARTICIPANTS = ("buyer", "seller")
TEXTS = ("trade_id", "commodity", "currency", "unit", "grade", "action", *PARTICIPANTS)
FIELDS = (*REQUIRED, "seq", "action", *NUMERIC_QUALITY, "grade", *PARTICIPANTS, "affiliated")
WHITE_SPACE = set(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
)
_NUMBER = re.compile(
    r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|inf|infinity)", re.IGNORECASE | re.ASCII
)
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|z|[+-]\d{2}:?\d{2})",
    re.ASCII,
)
MAX_QUANTITY = 1e12
MAX_TEXT = 64


class Unreadable(Exception):
    """The body is not CSV / NDJSON at all."""


# Reading.


def read_csv(text: str) -> list[dict[str, str | None]]:
    records, fields, value, quoted, i = [], [], [], False, 0
    in_quotes = False
    while i < len(text):
        ch = text[i]
        if in_quotes:
            if ch == '"' and text[i + 1 : i + 2] == '"':
                value.append('"')
                i += 1
            elif ch == '"':
                in_quotes = False
            else:
                value.append(ch)
        elif ch == '"' and not value:
            in_quotes = quoted = True
        elif ch == ",":
            fields.append("".join(value))
            value, quoted = [], False
        elif ch == "\n" or (ch == "\r" and text[i + 1 : i + 2] == "\n"):
            i += ch == "\r"
            fields.append("".join(value))
            records.append(fields)
            fields, value, quoted = [], [], False
        else:
            value.append(ch)
        i += 1
    if in_quotes:
        raise Unreadable("unterminated quote")
    if value or quoted or fields:
        fields.append("".join(value))
        records.append(fields)
    if not records:
        raise Unreadable("no header")
    header, rows = records[0], records[1:]
    for row in rows:
        if len(row) != len(header):
            raise Unreadable("a record has another number of fields than the header")
    return [dict(zip(header, (v if v != "" else None for v in row), strict=True)) for row in rows]


def _json_text(value) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def read_ndjson(text: str) -> list[dict[str, str | None]]:
    rows = []
    for line in text.split("\n"):
        if not line.strip(" \t\r"):
            continue
        try:
            value = json.loads(line, parse_float=str, parse_int=str, parse_constant=str)
        except json.JSONDecodeError as exc:
            raise Unreadable(str(exc)) from exc
        if not isinstance(value, dict):
            raise Unreadable("a line is not an object")
        rows.append({name: _json_text(value.get(name)) for name in FIELDS})
    return rows


# Parsing values.


def parse_number(text: str | None) -> float | None:
    if text is None or not _NUMBER.fullmatch(text):
        return None
    return float(text)


def parse_integer(text: str | None) -> int | None:
    if text is None or not _INTEGER.fullmatch(text):
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


def parse_boolean(text: str | None) -> bool | None:
    lowered = None if text is None else text.lower()
    return {"true": True, "1": True, "false": False, "0": False}.get(lowered)


EARLIEST = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=dt.UTC)


def parse_instant(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    if _INTEGER.fullmatch(text):
        try:
            instant = EARLIEST + dt.timedelta(milliseconds=int(text) + 62_135_596_800_000)
        except OverflowError:
            return None
        return instant if EARLIEST <= instant <= LATEST else None
    match = _RFC3339.fullmatch(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    if offset in ("Z", "z"):
        zone = dt.UTC
    else:
        sign = -1 if offset[0] == "-" else 1
        hours, minutes = int(offset[1:3]), int(offset[-2:])
        if hours > 23 or minutes > 59:
            return None
        zone = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
    try:
        local = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, zone
        )
        return local.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return None


# Checking.


@dataclass
class Checked:
    row: int
    failures: list[tuple[str, str]] = field(default_factory=list)  # (field, code), all
    parsed: dict = field(default_factory=dict)
    price_n: float | None = None
    quantity_n: float | None = None
    held: bool | None = None
    trade_date: dt.date | None = None
    window_day: dt.date | None = None  # None also where the handed-in days do not reach

    @property
    def codes(self) -> set[str]:
        return {code for _, code in self.failures}


def _bad_text(name: str, text: str) -> bool:
    if "\x00" in text or len(text) > MAX_TEXT or text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return True
    if name in PARTICIPANTS and any(unicodedata.category(ch) == "Cc" for ch in text):
        return True
    edges = text[0] in WHITE_SPACE or text[-1] in WHITE_SPACE
    return name in ("trade_id", *PARTICIPANTS) and edges


def check_rows(
    rows: list[dict],
    catalogue,
    methodology,
    fx_rates: dict[tuple[dt.date, str], float],
    *,
    now: dt.datetime,
    tolerance: dt.timedelta,
    zone: str,
    present: set[str],
    publication_days: tuple[dt.date, Sequence[dt.date]] | None = None,
    cutoff: dt.time = dt.time(15),
) -> list[Checked]:
    """Every row with all its failing checks, its parsed values and its normalised ones.

    ``publication_days``: ``(since, days)``, every publication day from ``since`` on as far
    as ``days`` (sorted) go; they give the window days of the trades they reach."""
    commodities = {c.code: c for c in catalogue.commodities}
    params = methodology.commodities
    out = []
    for number, row in enumerate(rows, start=1):
        text = {name: row.get(name) for name in FIELDS}
        checked = Checked(number)
        out.append(checked)
        fail = checked.failures.append
        action = text["action"] or "new"
        cancel = action == "cancel"
        parsed = {name: parse_number(text[name]) for name in NUMBERS}
        parsed["traded_at"] = parse_instant(text["traded_at"])
        parsed["seq"] = parse_integer(text["seq"])
        parsed["affiliated"] = parse_boolean(text["affiliated"])
        parsed.update({name: text[name] for name in TEXTS}, action=action)
        checked.parsed = parsed

        for name in REQUIRED:
            if text[name] is None and (name == "trade_id" or not cancel):
                fail((name, "missing_field"))
        for name in TEXTS:
            checked_here = name in present and (name in ("trade_id", "action") or not cancel)
            if checked_here and text[name] is not None and _bad_text(name, text[name]):
                fail((name, "bad_text"))
        for name in ("traded_at", *NUMBERS, "seq", "affiliated"):
            unread = text[name] is not None and parsed[name] is None
            if name in present and unread and (name == "seq" or not cancel):
                fail((name, "bad_type"))
        if action not in ("new", "cancel", "amend"):
            fail(("action", "unsupported_action"))
        if cancel:
            continue
        checked.trade_date = _trading_day(parsed["traded_at"], zone)
        checked.window_day = _window_day(parsed["traded_at"], zone, publication_days, cutoff)
        for name in NUMBERS:
            if parsed[name] is not None and not math.isfinite(parsed[name]):
                fail((name, "not_finite"))
        c = commodities.get(text["commodity"])
        if c is None:
            fail(("commodity", "unknown_commodity"))
        unit = text["unit"]
        factor = None
        if c is not None:
            factor = 1.0 if unit == c.unit else params[c.code].normalisation.units.get(unit)
        if factor is None:
            fail(("unit", "unit_mismatch"))
        currency = text["currency"]
        if c is None or not (
            currency == c.currency or currency in params[c.code].normalisation.currencies
        ):
            fail(("currency", "currency_mismatch"))
        price, quantity = parsed["price"], parsed["quantity"]
        wet = factor is not None and unit in params[c.code].normalisation.wet_units
        moisture = parsed["moisture_pct"]
        if wet and moisture is None:
            fail(("moisture_pct", "missing_field"))
        negative_allowed = c is not None and params[c.code].normalisation.allow_negative_prices
        if c is not None and price is not None and price <= 0 and not negative_allowed:
            fail(("price", "non_positive_price"))
        if quantity is not None and quantity <= 0:
            fail(("quantity", "non_positive_quantity"))
        dry = (1.0 - moisture / 100.0 if moisture is not None else None) if wet else 1.0
        if factor is not None and quantity is not None and dry is not None:
            checked.quantity_n = quantity * (factor * dry)
            if checked.quantity_n > MAX_QUANTITY:
                fail(("quantity", "quantity_out_of_band"))
        if wet and _is_number(moisture) and not 0 <= moisture < 100:
            fail(("moisture_pct", "quality_out_of_range"))
        if c is None:
            _dates(checked, c, parsed, now, tolerance, zone)
            continue
        ranges = {
            name: tuple(c.spec[f"{name}_range"])
            for name in NUMERIC_QUALITY
            if f"{name}_range" in c.spec
        }
        ranges.update(params[c.code].normalisation.ranges)
        for name, (low, high) in ranges.items():
            value = parsed[name]
            if name in present and _is_number(value) and not low <= value <= high:
                fail((name, "quality_out_of_range"))
        ratio = 1.0
        rata = params[c.code].normalisation.pro_rata
        if rata is not None and parsed[rata.attribute] is not None:
            if parsed[rata.attribute] <= 0:
                fail((rata.attribute, "quality_out_of_range"))
            elif parsed[rata.attribute] != rata.basis:
                ratio = rata.basis / parsed[rata.attribute]
        deduction = 0.0
        for penalty in params[c.code].normalisation.penalties:
            value = parsed[penalty.attribute]
            if value is not None:
                deduction += penalty.per_unit * max(0.0, value - penalty.above) / penalty.step
        for name, table in params[c.code].normalisation.differentials.items():
            value = parsed[name]
            if value is None:
                continue
            if name in NUMERIC_QUALITY:
                premiums = {float(k): v for k, v in table.items()}
            else:
                premiums = dict(table)
            if value not in premiums:
                fail((name, "quality_out_of_range"))
            else:
                deduction += premiums[value]
        day = _trading_day(parsed["traded_at"], zone)
        fx = None
        if currency == c.currency:
            fx = 1.0
        elif day is not None:
            mine = 1.0 if currency == "CNY" else fx_rates.get((day, currency))
            theirs = 1.0 if c.currency == "CNY" else fx_rates.get((day, c.currency))
            fx = mine / theirs if mine is not None and theirs is not None else None
        checked.held = fx is None
        if None not in (price, factor, dry, fx):
            checked.price_n = price / (factor * dry) * fx * ratio - deduction
            low, high = params[c.code].price_band
            if not (math.isfinite(checked.price_n) and low <= checked.price_n <= high):
                fail(("price", "price_out_of_band"))
        _dates(checked, c, parsed, now, tolerance, zone)
    seen = set()
    for checked in out:
        if not checked.failures and checked.parsed["action"] == "new":
            trade_id = checked.parsed["trade_id"]
            if trade_id in seen:
                checked.failures.append(("trade_id", "duplicate_in_batch"))
            seen.add(trade_id)
    return out


def _is_number(value: float | None) -> bool:
    """Present and not NaN (a NaN is refused as not finite, and compares as nothing)."""
    return value is not None and value == value


def _trading_day(instant: dt.datetime | None, zone: str) -> dt.date | None:
    return instant.astimezone(ZoneInfo(zone)).date() if instant is not None else None


def _window_day(
    instant: dt.datetime | None,
    zone: str,
    known: tuple[dt.date, Sequence[dt.date]] | None,
    cutoff: dt.time,
) -> dt.date | None:
    if instant is None or known is None:
        return None
    since, days = known
    local = instant.astimezone(ZoneInfo(zone))
    if local.date() == dt.date.max:
        return None
    candidate = local.date()
    if local.time() > cutoff:
        candidate += dt.timedelta(days=1)
    if candidate < since:
        return None  # before the days handed in: which day comes next is not known here
    at = bisect_left(days, candidate)
    return days[at] if at < len(days) else None


def _dates(checked: Checked, c, parsed: dict, now, tolerance, zone: str) -> None:
    instant = parsed["traded_at"]
    if instant is None:
        return
    if instant > now + tolerance:
        checked.failures.append(("traded_at", "future_timestamp"))
    if c is not None and _trading_day(instant, zone) < c.listed_on:
        checked.failures.append(("traded_at", "before_listing"))

"""Query parameters shared by the series endpoints, checked once at the edge."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Query

from api.formats import Format
from core.errors import InvalidInput, InvalidRange

EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
MAX_LIMIT = 100_000_000


def instant(field: str, value: dt.datetime | None) -> dt.datetime | None:
    """A timezone-aware UTC instant; a value without an offset is read as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    if not (
        EARLIEST.replace(tzinfo=None) <= value.replace(tzinfo=None) <= LATEST.replace(tzinfo=None)
    ):
        raise InvalidRange(f"{field} must be between {EARLIEST:%Y} and {LATEST:%Y}", field=field)
    return value.astimezone(dt.UTC)


def date_range(start: dt.date | None, end: dt.date | None) -> None:
    if start and end and end < start:
        raise InvalidRange(f"end {end} is before start {start}", start=start, end=end)


AsOf = Annotated[
    dt.datetime | None,
    Query(
        description="Answer exactly as published at this instant (ISO 8601; UTC when no "
        "offset): the vintages with published_at ≤ as_of < superseded_at."
    ),
]


@dataclass(frozen=True)
class SeriesQuery:
    start: dt.date | None
    end: dt.date | None
    frequency: Literal["intraday", "daily", "weekly", "monthly", "quarterly", "annual"]
    transform: Literal["level", "change", "pct_change", "log_return", "yoy", "rebase"]
    as_of: dt.datetime | None
    order: Literal["asc", "desc"]
    limit: int | None
    rebase_to: float
    format: Format | None


async def series_query(
    start: Annotated[dt.date | None, Query(description="First date, inclusive")] = None,
    end: Annotated[dt.date | None, Query(description="Last date, inclusive")] = None,
    frequency: Annotated[
        Literal["intraday", "daily", "weekly", "monthly", "quarterly", "annual"],
        Query(
            description="`intraday`: every provisional and final vintage at its publication "
            "time; longer periods collapse to the period's last value, with open/high/low/close"
        ),
    ] = "daily",
    transform: Annotated[
        Literal["level", "change", "pct_change", "log_return", "yoy", "rebase"],
        Query(
            description="`change` = v − v₋₁; `pct_change` = 100 × (v / v₋₁ − 1); `log_return` "
            "= ln(v / v₋₁), with v₋₁ the previous point of the answer; `yoy` = 100 × "
            "(v / v_ref − 1), with v_ref the value on the same calendar date a year earlier "
            "or, when that date has none, on the last date before it with a value (29 "
            "February: 28 February), and for weekly, monthly, quarterly and annual points "
            "the same period a year earlier (ISO week 53: the last week of the year before); "
            "not with `intraday`. The reference must be in the answer's range (`start`–`end`, "
            "as published at `as_of`): a point without one keeps its date and has a null "
            "value (the first point; the first year for `yoy`). `rebase`: `rebase_to` × v / "
            "v₀ with v₀ the answer's first point"
        ),
    ] = "level",
    as_of: AsOf = None,
    order: Annotated[Literal["asc", "desc"], Query(description="Date order")] = "asc",
    limit: Annotated[
        int | None, Query(ge=1, le=MAX_LIMIT, description="At most this many points")
    ] = None,
    rebase_to: Annotated[
        float, Query(gt=0, lt=1e12, allow_inf_nan=False, description="Level of v₀ when rebasing")
    ] = 100.0,
    format: Annotated[
        Format | None,
        Query(
            description="Overrides Accept (text/csv, application/vnd.apache.parquet, "
            "application/vnd.apache.arrow.stream, the IPC file format "
            "application/vnd.apache.arrow.file as format=ipc)"
        ),
    ] = None,
) -> SeriesQuery:
    date_range(start, end)
    if transform == "yoy" and frequency == "intraday":
        raise InvalidInput(
            "transform", "yoy needs dates a year apart; choose a frequency other than intraday"
        )
    return SeriesQuery(
        start, end, frequency, transform, instant("as_of", as_of), order, limit, rebase_to, format
    )


SeriesQueryDep = Annotated[SeriesQuery, Depends(series_query)]
"""Checked on the event loop: it reads nothing, so it costs no worker thread."""

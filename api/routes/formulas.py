"""Researcher formulas over chosen commodities' assessments (Laspeyres … GEKS, GK, WTPD).

Each commodity is an item, its daily assessment the price and the day's traded volume the
quantity; the formula, method and base period are the caller's (see ``index.formulas``).
A commodity-day without traded volume (a stale assessment carries an earlier price
forward) has no quantity to weight its price by: it is left out, and the answer says so.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import polars as pl
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from api.deps import ReadSessionDep
from api.formats import MEDIA_TYPES, Format, negotiate, render
from api.params import AsOf, date_range, instant
from api.schemas import FormulaAnswer
from api.stored_values import known_at
from core.errors import InvalidInput, InvalidRange, UnknownCommodity
from index.formulas import FORMULAS, MULTILATERAL, SPLICES, multilateral_work
from store import models

router = APIRouter(prefix="/v1/formulas", tags=["formulas"])

FORMULA_NAMES = (*FORMULAS, *MULTILATERAL)
MAX_COMMODITIES = 200
MAX_WORK = 5_000_000_000
"""Most work a multilateral index may take here (``multilateral_work``: about 5 s)."""
NO_VOLUME = "no traded volume"
QUERY_NAMES = {"base_period": "base"}
"""The formula library's argument names that the query calls otherwise."""


def _prices(session, ids: dict[str, int], start, end, as_of) -> pl.DataFrame:
    query = select(
        models.Assessment.date,
        models.Assessment.commodity_id,
        models.Assessment.price,
        models.Assessment.volume,
    ).where(
        models.Assessment.commodity_id.in_(ids.values()),
        models.Assessment.price.is_not(None),  # a suspended assessment has no price
        known_at(models.Assessment, as_of),
    )
    if start is not None:
        query = query.where(models.Assessment.date >= start)
    if end is not None:
        query = query.where(models.Assessment.date <= end)
    codes = {v: k for k, v in ids.items()}
    rows = session.execute(query.order_by(models.Assessment.date)).all()
    return pl.DataFrame(
        {
            "period": [r.date for r in rows],
            "item": [codes[r.commodity_id] for r in rows],
            "price": [r.price for r in rows],
            "quantity": [r.volume for r in rows],
        },
        schema={"period": pl.Date, "item": pl.String, "price": pl.Float64, "quantity": pl.Float64},
    )


@router.get(
    "/{formula}",
    response_model=FormulaAnswer,
    responses={
        200: {
            "content": {
                "text/csv": {},
                "application/vnd.apache.parquet": {},
                "application/vnd.apache.arrow.stream": {},
                "application/vnd.apache.arrow.file": {},
            },
            "headers": {
                "X-Left-Out": {
                    "description": "How many commodity-days were left out (see left_out)",
                    "schema": {"type": "integer"},
                }
            },
        },
        406: {"description": "No acceptable media type"},
    },
    summary="A price index by a researcher's formula over chosen commodities and dates",
)
def formula_index(
    request: Request,
    session: ReadSessionDep,
    formula: Annotated[
        Literal[FORMULA_NAMES],
        Path(
            description="Bilateral formula, or a multilateral index: `geks`, `gk` "
            "(Geary-Khamis), `wtpd` (weighted time-product-dummy)"
        ),
    ],
    commodities: Annotated[
        str, Query(max_length=4000, description="Comma-separated commodity codes")
    ],
    start: Annotated[dt.date | None, Query()] = None,
    end: Annotated[dt.date | None, Query()] = None,
    method: Annotated[Literal["fixed", "chained"], Query()] = "fixed",
    base: Annotated[dt.date | None, Query(description="Base period (default: first)")] = None,
    geks_base: Annotated[Literal["fisher", "tornqvist", "walsh", "jevons"], Query()] = "tornqvist",
    window: Annotated[
        int,
        Query(ge=2, le=10_000, description="Multilateral window, in periods (days with prices)"),
    ] = 13,
    splice: Annotated[
        Literal[SPLICES],
        Query(
            description="How a multilateral index extends past its first window: onto the "
            "previous window (`movement`, `window`, `half`, `mean`), onto the published "
            "series (`wisp`, `hasp`, `mean_published`), or from a fixed base every "
            "window - 1 periods (`fbew` expanding window, `fbmw` moving window)"
        ),
    ] = "movement",
    as_of: AsOf = None,
    format: Annotated[Format | None, Query()] = None,
):
    from index import formulas

    date_range(start, end)
    as_of = instant("as_of", as_of)
    codes = list(dict.fromkeys(c.strip() for c in commodities.split(",") if c.strip()))
    if not codes or len(codes) > MAX_COMMODITIES:
        raise InvalidRange(f"commodities: give 1 to {MAX_COMMODITIES} codes", field="commodities")
    ids = dict(
        session.execute(
            select(models.Commodity.code, models.Commodity.id).where(
                models.Commodity.code.in_(codes)
            )
        ).all()
    )
    for code in codes:
        if code not in ids:
            raise UnknownCommodity(code)
    data = _prices(session, ids, start, end, as_of)
    if data.is_empty():
        raise InvalidRange("no assessments of these commodities in the range", field="commodities")
    traded = (pl.col("quantity").is_finite() & (pl.col("quantity") > 0)).fill_null(False)
    left_out = data.filter(~traded).sort("period", "item")
    data = data.filter(traded)
    if data.is_empty():
        raise InvalidRange(
            f"no assessment of these commodities in the range has traded volume "
            f"({left_out.height} without)",
            field="commodities",
        )
    multilateral = formula in MULTILATERAL
    if multilateral:
        _check_work(formula, data, window)
    try:
        if formula == "geks":
            result = formulas.geks(data, geks_base, window, splice)
        elif multilateral:
            result = getattr(formulas, formula)(data, window, splice)
        else:
            result = formulas.compute(data, formula, method, base)
    except InvalidInput as exc:  # name the query parameter the caller sent
        field = QUERY_NAMES.get(exc.field, exc.field)
        raise InvalidInput(field, exc.reason) from exc
    fmt = negotiate(format, request.headers.get("accept"))
    envelope = {
        "formula": formula,
        "method": formula if multilateral else method,
        "window": window if multilateral else None,
        "splice": splice if multilateral else None,
        "commodities": codes,
        "as_of": as_of.isoformat() if as_of else None,
        "left_out": [
            {"period": day.isoformat(), "commodity": commodity, "reason": NO_VOLUME}
            for day, commodity in left_out.select("period", "item").iter_rows()
        ],
    }
    schema = {"period": pl.Date, "value": pl.Float64}
    return StreamingResponse(
        render(fmt, [result.select(pl.col("period"), pl.col("value"))], schema, envelope),
        media_type=MEDIA_TYPES[fmt],
        headers={"X-Left-Out": str(left_out.height)},
    )


def _check_work(formula: str, data: pl.DataFrame, window: int) -> None:
    periods, items = data["period"].n_unique(), data["item"].n_unique()
    work = multilateral_work(formula, periods, items, min(window, periods))
    if work > MAX_WORK:
        raise InvalidInput(
            "window",
            f"{formula} over {items} commodities and {periods} periods with a window of "
            f"{window} takes about {work:.1e} steps, more than the {MAX_WORK:.0e} allowed; "
            f"shorten the window or the range, or choose fewer commodities",
        )

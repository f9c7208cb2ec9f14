"""The trade feed's fields and the stable reason codes for rejecting a row."""

from __future__ import annotations

from enum import StrEnum

import polars as pl

REQUIRED_FIELDS: tuple[str, ...] = (
    "trade_id",
    "commodity",
    "traded_at",
    "price",
    "quantity",
    "currency",
    "unit",
)
QUALITY_FIELDS: dict[str, pl.DataType] = {
    "fe_pct": pl.Float64(),
    "moisture_pct": pl.Float64(),
    "grade": pl.String(),
}
OPTIONAL_FIELDS: dict[str, pl.DataType] = {
    "seq": pl.Int64(),
    "action": pl.String(),
    **QUALITY_FIELDS,
}
ALL_FIELDS: tuple[str, ...] = (*REQUIRED_FIELDS, *OPTIONAL_FIELDS)

MAX_TEXT_LENGTH = 64
ACTIONS = ("new", "cancel", "amend")


class Reason(StrEnum):
    """Why a row was rejected. Codes are part of the public interface: never renumber."""

    MISSING_FIELD = "missing_field"
    BAD_TYPE = "bad_type"
    NOT_FINITE = "not_finite"
    BAD_TEXT = "bad_text"
    NON_POSITIVE_PRICE = "non_positive_price"
    NON_POSITIVE_QUANTITY = "non_positive_quantity"
    UNKNOWN_COMMODITY = "unknown_commodity"
    UNIT_MISMATCH = "unit_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    PRICE_OUT_OF_BAND = "price_out_of_band"
    QUALITY_OUT_OF_RANGE = "quality_out_of_range"
    FUTURE_TIMESTAMP = "future_timestamp"
    BEFORE_LISTING = "before_listing"
    UNSUPPORTED_ACTION = "unsupported_action"
    DUPLICATE_IN_BATCH = "duplicate_in_batch"

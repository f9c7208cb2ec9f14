"""The trade feed's fields and the stable reason codes for rejecting or holding a row."""

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
NUMERIC_QUALITY_FIELDS: tuple[str, ...] = (
    "fe_pct",
    "moisture_pct",
    "sio2_pct",
    "al2o3_pct",
    "p_pct",
    "diameter_mm",
    "thickness_mm",
)
TEXT_QUALITY_FIELDS: tuple[str, ...] = ("grade",)
QUALITY_FIELDS: dict[str, pl.DataType] = {
    **{name: pl.Float64() for name in NUMERIC_QUALITY_FIELDS},
    **{name: pl.String() for name in TEXT_QUALITY_FIELDS},
}
PARTICIPANT_FIELDS: tuple[str, ...] = ("buyer", "seller")
"""The exchange's own pseudonymous codes of a trade's two sides: stored, and shown to that
exchange alone."""
AFFILIATED_FIELD = "affiliated"
"""Set by the exchange when buyer and seller belong to one group."""
OPTIONAL_FIELDS: dict[str, pl.DataType] = {
    "seq": pl.Int64(),
    "action": pl.String(),
    **QUALITY_FIELDS,
    **{name: pl.String() for name in PARTICIPANT_FIELDS},
    AFFILIATED_FIELD: pl.Boolean(),
}
ALL_FIELDS: tuple[str, ...] = (*REQUIRED_FIELDS, *OPTIONAL_FIELDS)
# A payload may name its exchange; it must then be the key's own (else the request is 403).
EXCHANGE_FIELD = "exchange"
ALIASES: dict[str, str] = {
    "tradeid": "trade_id",
    "execid": "trade_id",
    "symbol": "commodity",
    "securityid": "commodity",
    "transacttime": "traded_at",
    "lastpx": "price",
    "lastqty": "quantity",
    "unitofmeasure": "unit",
}
"""Other names of a feed column (the FIX trade capture report's among them), lower-cased:
column names are matched without regard to case."""
COLUMN_NAMES: dict[str, str] = {
    **{name: name for name in (*ALL_FIELDS, EXCHANGE_FIELD)},
    **ALIASES,
}
"""Every accepted column name, lower-cased, to the field it names."""

MAX_TEXT_LENGTH = 64
# More benchmark units than any market trades in a year: a larger quantity is a mistake,
# and sums of such quantities overflow the assessment.
MAX_QUANTITY = 1e12
ACTIONS = ("new", "cancel", "amend")


class Reason(StrEnum):
    """Why a row was rejected. Codes are part of the public interface: never renumber."""

    MISSING_FIELD = "missing_field"
    BAD_TYPE = "bad_type"
    NOT_FINITE = "not_finite"
    BAD_TEXT = "bad_text"
    NON_POSITIVE_PRICE = "non_positive_price"
    NON_POSITIVE_QUANTITY = "non_positive_quantity"
    QUANTITY_OUT_OF_BAND = "quantity_out_of_band"
    UNKNOWN_COMMODITY = "unknown_commodity"
    UNIT_MISMATCH = "unit_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    PRICE_OUT_OF_BAND = "price_out_of_band"
    QUALITY_OUT_OF_RANGE = "quality_out_of_range"
    FUTURE_TIMESTAMP = "future_timestamp"
    BEFORE_LISTING = "before_listing"
    UNSUPPORTED_ACTION = "unsupported_action"
    DUPLICATE_IN_BATCH = "duplicate_in_batch"
    UNKNOWN_TRADE = "unknown_trade"
    TRADE_CANCELLED = "trade_cancelled"


class HoldReason(StrEnum):
    """Why a stored trade is held out of assessments until something arrives."""

    FX_RATE_MISSING = "fx_rate_missing"


class TradeStatus(StrEnum):
    ACTIVE = "active"
    HELD = "held"
    CANCELLED = "cancelled"

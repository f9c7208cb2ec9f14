"""Normalise validated trades to their commodity's benchmark specification.

Every trade reaching this point already quotes the benchmark's unit and currency, so the
normalised price and quantity equal the raw ones; currency, unit and quality conversions
slot in here as further expressions.
"""

from __future__ import annotations

import polars as pl

from ingest.fields import QUALITY_FIELDS


def normalised_frame(valid: pl.LazyFrame) -> pl.LazyFrame:
    attributes = pl.struct([pl.col(name) for name in QUALITY_FIELDS])
    return valid.select(
        "row",
        "trade_id",
        "commodity_id",
        "traded_at",
        pl.col("price").alias("price_raw"),
        pl.col("quantity").alias("quantity_raw"),
        pl.col("currency").alias("currency_raw"),
        pl.col("unit").alias("unit_raw"),
        pl.col("price"),
        pl.col("quantity"),
        attributes.alias("attributes"),
        "seq",
    )

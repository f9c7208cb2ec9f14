"""Normalise trades to their commodity's benchmark specification, as Polars expressions.

For a trade quoting ``price`` per ``unit`` in ``currency`` for ``quantity`` units:

1. units: ``q = quantity × unit_factor × dry``, where ``dry = 1 − moisture_pct / 100`` for
   a wet unit (iron ore ``wmt``) and 1 otherwise; the price per benchmark unit is
   ``price / (unit_factor × dry)`` (the traded value is unchanged);
2. currency: × ``fx_rate`` = CNY per unit of the trade's currency ÷ CNY per unit of the
   benchmark currency, both from the FX table for the trade's trading day; with no rate
   the trade is stored ``held`` (price null) until the rate is loaded;
3. quality: × ``basis / attribute`` for a pro-rata attribute (iron ore: 62 / Fe%);
   − each penalty ``per_unit × max(0, attribute − above) / step``; − the differential
   (premium over the benchmark) of each attribute with a differential table.

Each step applied is recorded in the trade's ``adjustments``; a step that changes nothing
(a factor of 1, a zero premium) is not recorded.
"""

from __future__ import annotations

import polars as pl

from core.fields import (
    AFFILIATED_FIELD,
    PARTICIPANT_FIELDS,
    QUALITY_FIELDS,
    HoldReason,
    TradeStatus,
)
from ingest.rules import FeedRules, FxTable


def _json_member(name: str, value: pl.Expr, *, text: bool = False) -> tuple[str, pl.Expr, bool]:
    """A member ``"name":value`` of a JSON object, left out where the value is null. Text
    values must need no JSON escaping (the validators refuse quotes, backslashes and
    control characters)."""
    return name, value, text


def json_object(members: list[tuple[str, pl.Expr, bool]]) -> pl.Expr:
    """A JSON object of the members whose value is not null; null when there is none."""
    if not members:
        return pl.lit(None, dtype=pl.String)
    values = pl.struct([value.alias(f"m{i}") for i, (_, value, _) in enumerate(members)])
    layout = [(name, text) for name, _, text in members]
    return values.map_batches(lambda rows: _encoded(rows, layout), return_dtype=pl.String)


def _encoded(rows: pl.Series, layout: list[tuple[str, bool]]) -> pl.Series:
    """The objects of ``rows`` (a struct of member values), formatted only for the rows
    that have a member: most rows of a feed have none, and formatting is the cost."""
    frame = rows.struct.unnest()
    has_member = frame.select(pl.any_horizontal(pl.all().is_not_null())).to_series()
    where = has_member.arg_true()
    out = pl.repeat(None, len(rows), dtype=pl.String, eager=True).alias(rows.name)
    if where.is_empty():
        return out
    parts = []
    for i, (name, text) in enumerate(layout):
        value = pl.col(f"m{i}")
        if text:
            parts.append(pl.lit(f'"{name}":"') + value + pl.lit('"'))
        else:
            parts.append(pl.lit(f'"{name}":') + value.cast(pl.String))
    body = pl.concat_str(parts, separator=",", ignore_nulls=True)
    objects = frame[where].select(pl.concat_str([pl.lit("{"), body, pl.lit("}")]))
    return out.scatter(where, objects.to_series())


def rule_columns(rules: FeedRules, present: set[str]) -> list[pl.Expr]:
    """Per-row rule lookups (needs ``commodity_index``) and the trading day."""
    columns = [
        rules.per_commodity(rules.commodity_ids, pl.Int64()).alias("commodity_id"),
        *(rules.scalar(name).alias(name) for name in rules.scalars),
        rules.units.at(pl.col("unit")).alias("unit_factor"),
        rules.wet.at(pl.col("unit")).alias("wet"),
        rules.currencies.at(pl.col("currency")).alias("currency_ok"),
        rules.calendar.local_date_expr(pl.col("traded_at")).alias("trade_date"),
        rules.calendar.window_day_expr(pl.col("traded_at"), rules.scalar("cutoff")).alias(
            "window_day"
        ),
    ]
    for attribute, (premiums, configured) in rules.differentials.items():
        if attribute not in present:
            continue
        columns += [
            premiums.at(pl.col(attribute)).alias(f"differential_{attribute}"),
            rules.per_commodity(configured, pl.Boolean()).alias(f"has_differential_{attribute}"),
        ]
    return columns


def normalised_columns(rules: FeedRules, fx: FxTable, present: set[str]) -> list[list[pl.Expr]]:
    """Stages of expressions (each stage may use the previous ones' columns) adding
    ``fx_rate``, ``price_n``, ``quantity_n``, ``held``, ``attributes`` and ``adjustments``."""
    converted = pl.col("currency") != pl.col("spec_currency")
    day = pl.col("trade_date")
    fx_rate = (
        pl.when(~converted)
        .then(pl.lit(1.0))
        .otherwise(
            fx.cny_per_unit(pl.col("currency"), day) / fx.cny_per_unit(pl.col("spec_currency"), day)
        )
    )
    dry = (
        pl.when(pl.col("wet")).then(1.0 - pl.col("moisture_pct") / 100.0).otherwise(1.0)
        if "moisture_pct" in present
        else pl.lit(1.0)
    )
    first = [
        fx_rate.alias("fx_rate"),
        dry.alias("dry_factor"),
        (pl.col("unit_factor") * dry).alias("quantity_factor"),
    ]
    adjustments = [
        _json_member(
            "unit_factor",
            pl.when(pl.col("unit_factor") != 1.0).then(pl.col("unit_factor")),
        ),
        _json_member("dry_factor", pl.when(pl.col("wet")).then(pl.col("dry_factor"))),
        _json_member("fx_rate", pl.when(converted).then(pl.col("fx_rate"))),
    ]
    quality: list[pl.Expr] = []
    factor = pl.lit(1.0)
    deduction = pl.lit(0.0)
    for attribute, bases in rules.pro_rata.items():
        if attribute not in present:
            continue
        name = f"pro_rata_{attribute}"
        basis = rules.per_commodity(bases, pl.Float64())
        ratio = pl.when(basis != pl.col(attribute)).then(basis / pl.col(attribute))
        quality.append(ratio.alias(name))
        factor = factor * pl.col(name).fill_null(1.0)
        adjustments.append(_json_member(name, pl.col(name)))
    for attribute, (above, per_unit, step) in rules.penalties.items():
        if attribute not in present:
            continue
        name = f"penalty_{attribute}"
        excess = (pl.col(attribute) - rules.per_commodity(above, pl.Float64())).clip(lower_bound=0)
        penalty = (
            rules.per_commodity(per_unit, pl.Float64())
            * excess
            / rules.per_commodity(step, pl.Float64())
        )
        quality.append(pl.when(penalty > 0).then(penalty).alias(name))
        deduction = deduction + pl.col(name).fill_null(0.0)
        adjustments.append(_json_member(name, pl.col(name)))
    for attribute in rules.differentials:
        if attribute not in present:
            continue
        premium = pl.col(f"differential_{attribute}")
        deduction = deduction + premium.fill_null(0.0)
        adjustments.append(
            _json_member(f"differential_{attribute}", pl.when(premium != 0).then(premium))
        )
    price_n = pl.col("price") / pl.col("quantity_factor") * pl.col("fx_rate") * factor - deduction
    last = [
        price_n.alias("price_n"),
        (pl.col("quantity") * pl.col("quantity_factor")).alias("quantity_n"),
        pl.col("fx_rate").is_null().alias("held"),
        json_object(
            [
                _json_member(name, pl.col(name), text=dtype == pl.String)
                for name, dtype in QUALITY_FIELDS.items()
                if name in present
            ]
        ).alias("attributes"),
        json_object(adjustments).alias("adjustments"),
    ]
    return [first, quality, last] if quality else [first, last]


def stored_frame(valid: pl.LazyFrame) -> pl.LazyFrame:
    """The columns a trade is stored with (``row``, ``trade_date`` and ``window_day`` kept
    for reporting)."""
    return valid.select(
        "row",
        "action",
        "trade_id",
        "commodity_id",
        "traded_at",
        "trade_date",
        "window_day",
        pl.col("price").alias("price_raw"),
        pl.col("quantity").alias("quantity_raw"),
        pl.col("currency").alias("currency_raw"),
        pl.col("unit").alias("unit_raw"),
        pl.when(~pl.col("held")).then(pl.col("price_n")).alias("price"),
        pl.col("quantity_n").alias("quantity"),
        "attributes",
        "adjustments",
        "seq",
        *(pl.col(name).cast(pl.String) for name in PARTICIPANT_FIELDS),
        pl.col(AFFILIATED_FIELD).cast(pl.Boolean),
        pl.when(pl.col("held"))
        .then(pl.lit(TradeStatus.HELD.value))
        .otherwise(pl.lit(TradeStatus.ACTIVE.value))
        .alias("status"),
        pl.when(pl.col("held")).then(pl.lit(HoldReason.FX_RATE_MISSING.value)).alias("hold_reason"),
    )

"""Realistic synthetic trade feeds for the demo, the tests and the benchmarks.

Each commodity's mid price follows a geometric random walk around a realistic level;
trades scatter around the mid during Beijing trading hours with lot sizes typical of the
market. A few malformed rows per file exercise the validators. The synthetic exchanges
trade Monday to Friday, public holidays included (spot e-trading platforms do): the index's
calendar decides which publication day's window each trade belongs to.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from core.calendar import Calendar
from core.fields import REQUIRED_FIELDS
from core.methodology import in_force

ZONE = Calendar(in_force()).zone


@dataclass(frozen=True)
class Market:
    level: float
    daily_vol: float
    lot: float
    max_lots: int
    trades_per_day: int
    unit: str
    currency: str


MARKETS: dict[str, Market] = {
    "COTTON": Market(14_500.0, 0.009, 5.0, 40, 24, "t", "CNY"),
    "REBAR": Market(3_250.0, 0.011, 10.0, 100, 40, "t", "CNY"),
    "HRC": Market(3_350.0, 0.011, 10.0, 80, 32, "t", "CNY"),
    "IRONORE": Market(102.0, 0.016, 1_000.0, 60, 16, "dmt", "USD"),
    "BEA": Market(98.0, 0.018, 100.0, 50, 10, "tCO2e", "CNY"),
    "CEA": Market(72.0, 0.015, 1_000.0, 40, 20, "tCO2e", "CNY"),
    "PTA": Market(4_700.0, 0.013, 5.0, 60, 30, "t", "CNY"),
    "METHANOL": Market(2_400.0, 0.012, 10.0, 60, 26, "t", "CNY"),
    "PINELOG": Market(1_150.0, 0.007, 50.0, 40, 12, "m3", "CNY"),
}

EXCHANGES: dict[str, str] = {
    "BJCX": "Beijing Commodity e-Trading Exchange",
    "CBEEX": "China Beijing Environment Exchange",
    "BSTX": "Bohai Steel e-Trading Platform",
}

COLUMNS = (*REQUIRED_FIELDS, "fe_pct", "moisture_pct", "grade", "seq")


def trading_days(start: dt.date, count: int) -> list[dt.date]:
    """``count`` days of the synthetic exchanges (weekdays) from ``start`` on."""
    days, day = [], start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def weekdays_between(start: dt.date, end: dt.date) -> int:
    return sum(1 for n in range((end - start).days + 1) if (start + dt.timedelta(n)).weekday() < 5)


def _exchange_trades(
    rng: np.random.Generator,
    exchange: str,
    days: list[dt.date],
    mids: dict[str, np.ndarray],
) -> pl.DataFrame:
    parts = []
    day_starts = np.array(
        [dt.datetime.combine(d, dt.time(9), ZONE).timestamp() * 1000 for d in days],
        dtype=np.int64,
    )
    for code, market in MARKETS.items():
        counts = rng.poisson(market.trades_per_day / len(EXCHANGES), size=len(days))
        day_index = np.repeat(np.arange(len(days)), counts)
        n = day_index.size
        offsets_ms = rng.integers(0, 6 * 3_600_000, size=n)  # 09:00 to 15:00
        mid = mids[code][day_index]
        price = np.round(mid * np.exp(rng.normal(0.0, 0.004, size=n)), 2)
        quantity = market.lot * rng.integers(1, market.max_lots + 1, size=n)
        fe = np.full(n, np.nan)
        moisture = np.full(n, np.nan)
        if code == "IRONORE":
            fe = np.round(rng.uniform(61.5, 62.5, size=n), 2)
            moisture = np.round(rng.uniform(7.5, 9.0, size=n), 2)
            price = np.round(price * fe / 62.0, 2)
        grade = "3128B" if code == "COTTON" else None
        parts.append(
            pl.DataFrame(
                {
                    "commodity": code,
                    "epoch_ms": day_starts[day_index] + offsets_ms,
                    "price": price,
                    "quantity": quantity.astype(np.float64),
                    "currency": market.currency,
                    "unit": market.unit,
                    "fe_pct": fe,
                    "moisture_pct": moisture,
                    "grade": grade,
                },
                schema_overrides={"grade": pl.String},
            ).with_columns(pl.col("fe_pct", "moisture_pct").fill_nan(None))
        )
    trades = pl.concat(parts).sort("epoch_ms", "commodity")
    return trades.with_columns(
        pl.format("{}-{}", pl.lit(exchange), pl.int_range(1, pl.len() + 1).cast(pl.String)).alias(
            "trade_id"
        ),
        pl.from_epoch("epoch_ms", time_unit="ms")
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone(ZONE.key)
        .dt.strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .alias("traded_at"),
        pl.int_range(1, pl.len() + 1).alias("seq"),
    ).select(COLUMNS)


def _malformed_rows(rng: np.random.Generator, good: pl.DataFrame, count: int) -> pl.DataFrame:
    """Copies of real rows, each broken in one way a real feed breaks."""
    breakages = [
        ("price", "-12.5"),
        ("quantity", ""),
        ("commodity", "UNOBTAINIUM"),
        ("price", "12O4.5"),
        ("quantity", "NaN"),
        ("traded_at", "2025-13-45T99:00:00+08:00"),
        ("currency", "EUR"),
    ]
    text = good.cast(pl.String)
    rows = []
    for i in range(count):
        row = text.row(int(rng.integers(0, text.height)), named=True)
        column, value = breakages[i % len(breakages)]
        row[column] = value
        row["trade_id"] = f"{row['trade_id']}-bad{i}"
        rows.append(row)
    duplicate = text.row(0, named=True)
    rows.append(duplicate)  # the same trade_id twice in one file
    return pl.DataFrame(rows, schema=dict.fromkeys(COLUMNS, pl.String), orient="row")


def generate(
    out_dir: Path,
    *,
    start: dt.date,
    days: int,
    seed: int = 20250102,
    malformed_per_file: int = 7,
    file_format: str = "csv",
) -> list[Path]:
    """Write one feed file per exchange; returns their paths."""
    if days < 1:
        raise ValueError("days must be at least 1")
    rng = np.random.default_rng(seed)
    calendar = trading_days(start, days)
    mids = {
        code: market.level
        * np.exp(np.cumsum(rng.normal(0.0, market.daily_vol, size=len(calendar))))
        for code, market in MARKETS.items()
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for exchange in EXCHANGES:
        trades = _exchange_trades(rng, exchange, calendar, mids)
        if malformed_per_file:
            bad = _malformed_rows(rng, trades, malformed_per_file)
            trades = pl.concat([trades.cast(pl.String), bad])
        path = out_dir / f"{exchange}.{file_format}"
        if file_format == "csv":
            trades.write_csv(path)
        elif file_format == "parquet":
            trades.write_parquet(path)
        else:
            raise ValueError(f"file_format must be csv or parquet, not {file_format!r}")
        paths.append(path)
    return paths


def ticks(
    n: int, *, start: dt.date, days: int = 250, seed: int = 7, prefix: str = "T"
) -> pl.DataFrame:
    """``n`` valid trades of every commodity over ``days`` days from ``start`` (for load
    tests and benchmarks): the feed columns as text, as a CSV file carries them."""
    rng = np.random.default_rng(seed)
    codes = list(MARKETS)
    pick = rng.integers(0, len(codes), size=n)
    level = np.array([MARKETS[c].level for c in codes])[pick]
    lot = np.array([MARKETS[c].lot for c in codes])[pick]
    price = np.round(level * np.exp(rng.normal(0.0, 0.02, size=n)), 2)
    quantity = lot * rng.integers(1, 40, size=n)
    first = dt.datetime.combine(start, dt.time(9), ZONE).timestamp()
    epoch_ms = (
        int(first * 1000)
        + rng.integers(0, days, size=n) * 86_400_000
        + rng.integers(0, 6 * 3_600_000, size=n)
    )
    is_ore = np.array(codes)[pick] == "IRONORE"
    fe = np.where(is_ore, np.round(rng.uniform(60.5, 63.0, size=n), 2), np.nan)
    moisture = np.where(is_ore, np.round(rng.uniform(7.0, 9.5, size=n), 2), np.nan)
    frame = pl.DataFrame(
        {
            "number": np.arange(n),
            "commodity": np.array(codes)[pick],
            "epoch_ms": epoch_ms,
            "price": price,
            "quantity": quantity.astype(np.float64),
            "currency": np.array([MARKETS[c].currency for c in codes])[pick],
            "unit": np.array([MARKETS[c].unit for c in codes])[pick],
            "fe_pct": fe,
            "moisture_pct": moisture,
        }
    )
    return frame.select(
        pl.format("{}{}", pl.lit(prefix), pl.col("number")).alias("trade_id"),
        "commodity",
        pl.from_epoch("epoch_ms", time_unit="ms")
        .dt.replace_time_zone("UTC")
        .dt.convert_time_zone(ZONE.key)
        .dt.strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .alias("traded_at"),
        pl.col("price").cast(pl.String),
        pl.col("quantity").cast(pl.String),
        "currency",
        "unit",
        pl.col("fe_pct").fill_nan(None).cast(pl.String),
        pl.col("moisture_pct").fill_nan(None).cast(pl.String),
        pl.when(pl.col("commodity") == "COTTON").then(pl.lit("3128B")).alias("grade"),
        pl.int_range(1, n + 1).cast(pl.String).alias("seq"),
    )

"""Where a batch's check and normalisation time goes: one 100,000-row CSV batch of the parse
benchmark's feed, each part of ``validated_frame`` timed alone on one thread, as process
CPU time (robust to other work on the machine), best of 9.

    POLARS_MAX_THREADS=1 .venv/bin/python -m benchmarks.profile_checks
"""

from __future__ import annotations

import datetime as dt
import io
import time

import polars as pl

from benchmarks.bench_ingest_parse import _context
from cli.synthetic import ticks
from core.fields import ALL_FIELDS
from ingest.batch import check_batch
from ingest.normalise import normalised_columns, rule_columns
from ingest.validate import _checks, parsed_frame, raw_frame

ROWS = 100_000


def _cpu_ms(step, rounds: int = 9) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        step()
        best = min(best, time.process_time() - started)
    return best * 1000


def main() -> None:
    ctx = _context()
    rules = ctx.rules
    buffer = io.BytesIO()
    ticks(ROWS, start=dt.date(2025, 1, 2), seed=1, prefix="T-").write_csv(buffer)
    text = pl.read_csv(buffer.getvalue(), infer_schema=False)
    present = set(text.columns) & set(ALL_FIELDS)

    parsed = parsed_frame(raw_frame(text.lazy()), present)
    indexed = parsed.collect().lazy().with_columns(rules.commodity_index()).collect()
    lookups = rule_columns(rules, present)
    calendar = {"trade_date", "window_day"}
    ruled = indexed.lazy().with_columns(lookups).collect()
    stages = normalised_columns(rules, ctx.fx, present)
    normalised, normalising = ruled, 0.0
    for stage in stages:
        normalising += sum(
            _cpu_ms(lambda e=e, f=normalised: f.lazy().select(e).collect()) for e in stage
        )
        normalised = normalised.lazy().with_columns(stage).collect()
    checks = [
        bad
        for _, _, bad, _, _ in _checks(
            rules, set(parsed.collect_schema()), present, ctx.now, dt.timedelta(minutes=5)
        )
    ]

    def each(frame: pl.DataFrame, exprs) -> float:
        return sum(_cpu_ms(lambda e=e: frame.lazy().select(e).collect()) for e in exprs)

    parts = {
        "strict parse of the text, every field": _cpu_ms(lambda: parsed.collect()),
        "  of which traded_at": _cpu_ms(
            lambda: text.select(
                pl.col("traded_at").str.to_datetime(
                    format="%+", strict=False, time_unit="us", time_zone="UTC", cache=False
                )
            )
        ),
        "rules of the row's commodity": each(
            indexed, [e for e in lookups if e.meta.output_name() not in calendar]
        ),
        "trading day and window day": each(
            indexed, [e for e in lookups if e.meta.output_name() in calendar]
        ),
        "normalisation and its stored JSON": normalising,
        "checks (each predicate alone)": each(normalised, checks),
        "check_batch, whole": _cpu_ms(lambda: check_batch(ctx, text)),
    }
    print(f"CPU ms per {ROWS:,} rows, best of 9:")
    for name, ms in parts.items():
        print(f"  {name}: {ms:.1f}")


if __name__ == "__main__":
    main()

"""The harness's trades: realistic rows for one publication day, some invalid on purpose,
encoded in the push formats; some batches atomic (one bad row refuses them whole), some
re-sending trades already acknowledged (they come back as duplicates)."""

from __future__ import annotations

import datetime as dt
import io
import json
import random

import polars as pl

from cli.synthetic import MARKETS
from tests.reliability.ledger import BatchEntry, SentTrade

COMMODITIES = ("REBAR", "HRC", "COTTON", "PTA", "METHANOL", "PINELOG")
MEDIA_TYPES = {
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
}
BEIJING = dt.timezone(dt.timedelta(hours=8))


def _row(rng: random.Random, trade_id: str, day: dt.date) -> tuple[dict[str, str], SentTrade]:
    code = rng.choice(COMMODITIES)
    market = MARKETS[code]
    price = round(market.level * rng.uniform(0.98, 1.02), 2)
    quantity = market.lot * rng.randint(1, market.max_lots)
    at = dt.datetime.combine(day, dt.time(9, 0), BEIJING) + dt.timedelta(
        seconds=rng.randint(0, 5 * 3600)
    )
    row = {
        "trade_id": trade_id,
        "commodity": code,
        "traded_at": at.isoformat(),
        "price": repr(price),
        "quantity": repr(float(quantity)),
        "currency": market.currency,
        "unit": market.unit,
    }
    if code == "COTTON":
        row["grade"] = "3128B"
    valid = rng.random() >= 0.05
    if not valid:
        row["price"] = rng.choice(["-5", "0", "NaN", "abc"])
    return row, SentTrade(trade_id, price, float(quantity), valid)


def encode(rows: list[dict[str, str]], fmt: str) -> bytes:
    names = list(dict.fromkeys(name for row in rows for name in row))
    if fmt == "json":
        return json.dumps(rows).encode()
    if fmt == "ndjson":
        return "".join(json.dumps(row) + "\n" for row in rows).encode()
    frame = pl.DataFrame(
        [{n: row.get(n) for n in names} for row in rows], schema=dict.fromkeys(names, pl.String)
    )
    out = io.BytesIO()
    if fmt == "csv":
        frame.write_csv(out)
    else:
        frame.write_parquet(out)
    return out.getvalue()


def cycle_batches(
    rng: random.Random,
    cycle: int,
    day: dt.date,
    *,
    batches: int,
    rows: int,
    acknowledged: list[SentTrade],
    rows_of: dict[str, dict[str, str]],
) -> list[BatchEntry]:
    """The batches of one cycle, each with its own Idempotency-Key; every row built is
    kept in ``rows_of``, so that later batches can send acknowledged trades again."""
    out = []
    for b in range(batches):
        pairs = [_row(rng, f"c{cycle:04d}b{b:02d}r{r:03d}", day) for r in range(rows)]
        atomic = b % 5 == 4
        if atomic:  # one bad row refuses the whole batch
            row, trade = pairs[0]
            row["price"] = "-1"
            pairs[0] = (row, SentTrade(trade.trade_id, trade.price, trade.quantity, False))
        rows_of.update((trade.trade_id, row) for row, trade in pairs)
        if not atomic and b % 7 == 3 and acknowledged:  # acknowledged earlier, sent again
            again = rng.sample(acknowledged, min(len(acknowledged), rows // 4))
            pairs += [(rows_of[trade.trade_id], trade) for trade in again]
        fmt = list(MEDIA_TYPES)[(cycle + b) % len(MEDIA_TYPES)]
        out.append(
            BatchEntry(
                key=f"crash-{cycle:04d}-{b:02d}",
                cycle=cycle,
                media_type=MEDIA_TYPES[fmt],
                body=encode([row for row, _ in pairs], fmt),
                atomic=atomic,
                trades=[trade for _, trade in pairs],
            )
        )
    return out

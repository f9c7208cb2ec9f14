"""Helpers for the exchange-feed tests: trades, encodings in every push format, keys, counts."""

from __future__ import annotations

import io
import json
from pathlib import Path

import polars as pl
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from cli.synthetic import COLUMNS as FEED_COLUMNS
from core.settings import Settings
from store import models
from store.db import session_scope
from store.models import TradeRevision
from store.reference import add_exchange, create_key

COLUMNS = (*FEED_COLUMNS, "action")
MEDIA = {
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "arrow": "application/vnd.apache.arrow.stream",
}
FORMATS = tuple(MEDIA)


def trade(trade_id: str, **fields: str | None) -> dict[str, str | None]:
    """A valid rebar trade (every value as text, as a CSV carries it), with overrides."""
    row = {
        "trade_id": trade_id,
        "commodity": "REBAR",
        "traded_at": "2025-03-03T10:00:00+08:00",
        "price": "3300",
        "quantity": "10",
        "currency": "CNY",
        "unit": "t",
    }
    row.update(fields)
    return row


def frame(rows: list[dict]) -> pl.DataFrame:
    names = [c for c in COLUMNS if any(c in r for r in rows)]
    names += sorted({k for r in rows for k in r} - set(names))
    return pl.DataFrame(
        [{n: r.get(n) for n in names} for r in rows], schema=dict.fromkeys(names, pl.String)
    )


def encode(rows: list[dict], fmt: str) -> bytes:
    """``rows`` as a body of format ``fmt`` (JSON numbers stay text, as a sender may do)."""
    df = frame(rows)
    out = io.BytesIO()
    if fmt == "json":
        return json.dumps(df.to_dicts()).encode()
    if fmt == "ndjson":
        return "".join(json.dumps(r) + "\n" for r in df.to_dicts()).encode()
    if fmt == "csv":
        df.write_csv(out)
    elif fmt == "parquet":
        df.write_parquet(out)
    elif fmt == "arrow":
        df.write_ipc_stream(out)
    else:
        raise ValueError(fmt)
    return out.getvalue()


def client_for(database_url: str, archive: Path, **settings) -> TestClient:
    return TestClient(
        create_app(Settings(database_url=database_url, archive_dir=archive, **settings))
    )


def exchange_key(engine, code: str) -> str:
    with session_scope(engine) as session:
        _, key = add_exchange(session, code, f"{code} exchange")
    return key


def role_key(engine, role: str) -> str:
    with session_scope(engine) as session:
        return create_key(session, role)


def push(client: TestClient, key: str | None, rows: list[dict], fmt: str = "csv", **kwargs):
    headers = {"Content-Type": MEDIA[fmt], **kwargs.pop("headers", {})}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return client.post("/v1/trades", content=encode(rows, fmt), headers=headers, **kwargs)


def stored_counts(engine) -> dict[str, int]:
    """Everything a re-sent batch must leave unchanged."""
    with session_scope(engine) as session:

        def count(model, *where) -> int:
            return session.scalar(select(func.count()).select_from(model).where(*where))

        return {
            "trades": count(models.Trade),
            "active": count(models.Trade, models.Trade.status == "active"),
            "cancelled": count(models.Trade, models.Trade.status == "cancelled"),
            "held": count(models.Trade, models.Trade.status == "held"),
            "revisions": count(TradeRevision),
            "marks": count(models.RestatementMark),
        }


def stored_trades(engine, exchange_code: str | None = None) -> dict[str, models.Trade]:
    with session_scope(engine) as session:
        query = select(models.Trade)
        if exchange_code:
            query = query.join(models.Exchange).where(models.Exchange.code == exchange_code)
        return {t.trade_id: t for t in session.scalars(query)}

"""What ``bcpi exchanges list`` shows and what ``bcpi exchanges add`` checks first: each
exchange's keys, last batch and trades stored, and whether a code is taken."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from rich.table import Table
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from store import models


@dataclass(frozen=True)
class ExchangeRow:
    code: str
    name: str
    keys: int
    active_keys: int
    last_batch_at: dt.datetime | None
    trades: int

    def dump(self) -> dict:
        row = asdict(self)
        row["last_batch_at"] = _utc(self.last_batch_at)
        return row


def _utc(instant: dt.datetime | None) -> str | None:
    if instant is None:
        return None
    if instant.tzinfo is None:  # SQLite gives stored UTC instants back without their zone
        instant = instant.replace(tzinfo=dt.UTC)
    return instant.astimezone(dt.UTC).isoformat()


def exchange_rows(session: Session, code: str | None = None) -> list[ExchangeRow]:
    """Every exchange (or the one named ``code``) in code order."""
    keys = (
        select(
            models.ApiKey.exchange_id,
            func.count().label("issued"),
            func.count(models.ApiKey.id).filter(models.ApiKey.revoked_at.is_(None)).label("live"),
        )
        .where(models.ApiKey.role == "exchange")
        .group_by(models.ApiKey.exchange_id)
        .subquery()
    )
    batches = (
        select(models.IngestBatch.exchange_id, func.max(models.IngestBatch.received_at).label("at"))
        .group_by(models.IngestBatch.exchange_id)
        .subquery()
    )
    trades = (
        select(models.Trade.exchange_id, func.count().label("n"))
        .group_by(models.Trade.exchange_id)
        .subquery()
    )
    query = (
        select(
            models.Exchange.code,
            models.Exchange.name,
            func.coalesce(keys.c.issued, 0),
            func.coalesce(keys.c.live, 0),
            batches.c.at,
            func.coalesce(trades.c.n, 0),
        )
        .outerjoin(keys, keys.c.exchange_id == models.Exchange.id)
        .outerjoin(batches, batches.c.exchange_id == models.Exchange.id)
        .outerjoin(trades, trades.c.exchange_id == models.Exchange.id)
        .order_by(models.Exchange.code)
    )
    if code is not None:
        query = query.where(models.Exchange.code == code)
    return [ExchangeRow(*row) for row in session.execute(query)]


def exchanges_table(rows: list[ExchangeRow]) -> Table:
    table = Table(title=f"{len(rows)} exchange(s)")
    table.add_column("code")
    table.add_column("name")
    table.add_column("keys (active)", justify="right")
    table.add_column("last batch (UTC)")
    table.add_column("trades stored", justify="right")
    for row in rows:
        last = _utc(row.last_batch_at)
        table.add_row(
            row.code,
            row.name,
            f"{row.keys} ({row.active_keys})",
            last[:19].replace("T", " ") if last else "never",
            f"{row.trades:,}",
        )
    return table


def database_shown(engine: Engine) -> str:
    """The database's URL without its password, to name it in a message."""
    return engine.url.render_as_string(hide_password=True)

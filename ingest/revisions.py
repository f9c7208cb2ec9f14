"""Cancels and amends of stored trades, with their history.

A revision names an existing trade of the same exchange by ``trade_id`` (another
exchange's trades are invisible: ``unknown_trade``). A cancel sets the trade's status to
``cancelled``; an amend carries the whole corrected trade and replaces its raw and
normalised values, its participants and its affiliation (its receipt instant stays).
Either way the trade as it was is kept in ``trade_revisions``, and a revision message
already applied (same content) is a duplicate, never applied twice. Revisions are few,
so they are applied row by row in the batch's order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import UnknownTrade
from core.fields import AFFILIATED_FIELD, PARTICIPANT_FIELDS, Reason, TradeStatus
from ingest.results import Rejection
from store import models
from store.models import TradeRevision

if TYPE_CHECKING:
    from ingest.rules import FeedRules

CHUNK = 500
REVISED = {"cancel": "trade_cancelled", "amend": "trade_amended"}
"""The restatement reason of each revision."""
PARTIES = (*PARTICIPANT_FIELDS, AFFILIATED_FIELD)


@dataclass
class RevisionOutcome:
    cancelled: int = 0
    amended: int = 0
    held: int = 0
    duplicates: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    marks: set[tuple[int, dt.date, str, str]] = field(default_factory=set)
    """(commodity id, publication day, reason, cause) of each change to a trade."""


def content_hash(row: dict) -> str:
    if row["action"] == "cancel":
        content = ["cancel", row["trade_id"], row["seq"]]
    else:
        content = [
            "amend",
            row["trade_id"],
            row["seq"],
            row["commodity_id"],
            row["traded_at"].isoformat(),
            row["price_raw"],
            row["quantity_raw"],
            row["currency_raw"],
            row["unit_raw"],
            row["attributes"],
        ]
        parties = [row[name] for name in PARTIES]
        if any(value is not None for value in parties):  # amends without them hash as before
            content.append(parties)
    return hashlib.sha256(json.dumps(content, separators=(",", ":")).encode()).hexdigest()


def _snapshot(trade: models.Trade) -> dict:
    return {
        "commodity_id": trade.commodity_id,
        "traded_at": trade.traded_at.isoformat(),
        "price_raw": trade.price_raw,
        "quantity_raw": trade.quantity_raw,
        "currency_raw": trade.currency_raw,
        "unit_raw": trade.unit_raw,
        "price": trade.price,
        "quantity": trade.quantity,
        "attributes": trade.attributes,
        "adjustments": trade.adjustments,
        "seq": trade.seq,
        **{name: getattr(trade, name) for name in PARTIES},
        "status": trade.status,
        "hold_reason": trade.hold_reason,
        "revision": trade.revision,
    }


def _stored_trades(session: Session, exchange_id: int, ids: list[str]) -> dict[str, models.Trade]:
    out = {}
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        out.update(
            (t.trade_id, t)
            for t in session.scalars(
                select(models.Trade).where(
                    models.Trade.exchange_id == exchange_id, models.Trade.trade_id.in_(part)
                )
            )
        )
    return out


def _applied(session: Session, exchange_id: int, ids: list[str]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        out.update(
            (t, h)
            for t, h in session.execute(
                select(TradeRevision.trade_id, TradeRevision.content_hash).where(
                    TradeRevision.exchange_id == exchange_id, TradeRevision.trade_id.in_(part)
                )
            )
        )
    return out


def apply_revisions(
    session: Session,
    *,
    exchange_id: int,
    batch_id: int,
    revisions: pl.DataFrame,
    rules: FeedRules,
    now: dt.datetime,
) -> RevisionOutcome:
    outcome = RevisionOutcome()
    if revisions.is_empty():
        return outcome
    ids = revisions["trade_id"].unique().to_list()
    trades = _stored_trades(session, exchange_id, ids)
    seen = _applied(session, exchange_id, ids)

    for row in revisions.iter_rows(named=True):
        digest = content_hash(row)
        trade_id = row["trade_id"]
        if (trade_id, digest) in seen:
            outcome.duplicates += 1
            continue
        trade = trades.get(trade_id)
        if trade is None:
            outcome.rejections.append(
                Rejection(
                    row["row"],
                    trade_id,
                    "trade_id",
                    Reason.UNKNOWN_TRADE.value,
                    f"no trade {trade_id!r} from this exchange to {row['action']}",
                )
            )
            continue
        was_active = trade.status == TradeStatus.ACTIVE.value
        if trade.status == TradeStatus.CANCELLED.value:
            if row["action"] == "cancel":
                outcome.duplicates += 1
            else:
                outcome.rejections.append(
                    Rejection(
                        row["row"],
                        trade_id,
                        "action",
                        Reason.TRADE_CANCELLED.value,
                        f"trade {trade_id!r} was cancelled and cannot be amended",
                    )
                )
            continue
        session.add(
            TradeRevision(
                trade_pk=trade.id,
                exchange_id=exchange_id,
                trade_id=trade_id,
                batch_id=batch_id,
                action=row["action"],
                seq=row["seq"],
                content_hash=digest,
                previous=_snapshot(trade),
                revised_at=now,
            )
        )
        seen.add((trade_id, digest))
        if was_active:
            marked = rules.window_day(trade.commodity_id, trade.traded_at)
            cause = f"batch {batch_id} trade {trade_id}"
            outcome.marks.add((trade.commodity_id, marked, REVISED[row["action"]], cause))
        trade.revision += 1
        if row["action"] == "cancel":
            trade.status = TradeStatus.CANCELLED.value
            outcome.cancelled += 1
            continue
        trade.commodity_id = row["commodity_id"]
        trade.traded_at = row["traded_at"]
        trade.price_raw, trade.quantity_raw = row["price_raw"], row["quantity_raw"]
        trade.currency_raw, trade.unit_raw = row["currency_raw"], row["unit_raw"]
        trade.price, trade.quantity = row["price"], row["quantity"]
        trade.attributes = json.loads(row["attributes"]) if row["attributes"] else None
        trade.adjustments = json.loads(row["adjustments"]) if row["adjustments"] else None
        trade.seq = row["seq"] if row["seq"] is not None else trade.seq
        for name in PARTIES:
            setattr(trade, name, row[name])
        trade.status, trade.hold_reason = row["status"], row["hold_reason"]
        outcome.amended += 1
        if trade.status == TradeStatus.HELD.value:
            outcome.held += 1
        else:
            marked = rules.window_day(trade.commodity_id, trade.traded_at)
            cause = f"batch {batch_id} trade {trade_id}"
            outcome.marks.add((trade.commodity_id, marked, "trade_amended", cause))
    session.flush()
    return outcome


def stored_trade(
    session: Session, exchange_id: int, trade_id: str
) -> tuple[models.Trade, str, list[TradeRevision]]:
    """The exchange's trade ``trade_id``, its commodity's code and its revisions, oldest
    first; :class:`UnknownTrade` when the exchange has no such trade."""
    found = session.execute(
        select(models.Trade, models.Commodity.code)
        .join(models.Commodity, models.Commodity.id == models.Trade.commodity_id)
        .where(models.Trade.exchange_id == exchange_id, models.Trade.trade_id == trade_id)
    ).first()
    if found is None:
        raise UnknownTrade(trade_id)
    trade, code = found
    revisions = session.scalars(
        select(TradeRevision).where(TradeRevision.trade_pk == trade.id).order_by(TradeRevision.id)
    ).all()
    return trade, code, list(revisions)

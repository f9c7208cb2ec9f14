"""The trades table against the archive: every stored trade rebuilt from the archived
batches and the FX loads, in the order they arrived, through the ingest code, then
compared field by field, so a trades row edited behind the service's back is found."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from audit.differences import Difference, ReplayReport, same
from audit.replay import workspace
from audit.scratch import Scratch
from core.catalogue import Catalogue
from core.settings import Settings
from store import models
from store.upsert import TRADE_COLUMNS

COMPARED = tuple(c for c in TRADE_COLUMNS if c not in ("exchange_id", "trade_id", "batch_id"))
"""Every stored field of a trade but its key and the batch that brought it."""


def _trades(session: Session) -> dict[tuple[str, str], dict[str, Any]]:
    columns = [getattr(models.Trade, name) for name in COMPARED]
    rows = session.execute(
        select(models.Exchange.code, models.Trade.trade_id, *columns).join(
            models.Exchange, models.Exchange.id == models.Trade.exchange_id
        )
    ).mappings()
    return {(row["code"], row["trade_id"]): dict(row) for row in rows}


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return a == b
    return a is b or same(a, b) or (a is None and b is None)


def rebuild_trades(
    source: Engine,
    *,
    archive_dir: Path,
    catalogue: Catalogue,
    settings: Settings,
    workdir: Path | None = None,
) -> ReplayReport:
    """Every stored trade against its rebuilt twin; ``report.values`` counts the trades
    compared and ``report.identical`` those equal in every field."""
    report = ReplayReport()
    with Session(source) as session, workspace(workdir) as directory:
        scratch = Scratch(
            session,
            directory,
            catalogue=catalogue,
            settings=settings,
            archive_dir=archive_dir,
            report=report,
        )
        try:
            last_batch = max((b["id"] for b in scratch.batches), default=None)
            last_fx = max((load[-1]["id"] for load in scratch.fx_loads), default=None)
            scratch.feed_until(last_batch, last_fx)
            stored = _trades(session)
            with Session(scratch.engine) as replayed:
                rebuilt = _trades(replayed)
        finally:
            scratch.dispose()
    for key in sorted(stored.keys() | rebuilt.keys()):
        code = f"{key[0]} {key[1]}"
        mine, theirs = stored.get(key), rebuilt.get(key)
        report.values += 1
        if mine is None or theirs is None:
            present = "stored" if mine is not None else "absent"
            archived = "archived" if theirs is not None else "absent"
            report.differences.append(
                Difference("trade", code, None, None, "row", present, archived)
            )
            continue
        wrong = [name for name in COMPARED if not _equal(mine[name], theirs[name])]
        for name in wrong:
            report.differences.append(
                Difference("trade", code, None, None, name, mine[name], theirs[name])
            )
        report.identical += not wrong
    return report

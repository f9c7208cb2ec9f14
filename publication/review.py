"""Review flags: a published value whose day-on-day move exceeds the methodology's review
threshold carries the flag ``review`` and raises an alert. Publication is not held back.

The move compares a value with the standing value of the same series on the latest earlier
date that has one (a suspended assessment, without a price, is skipped)."""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.methodology import Methodology, load_methodology
from store import models
from store.models import WITHDRAWN

REVIEW = "review"
LOOKBACK_DAYS = 60
"""How far before a batch's first date to look for the previous value."""

_KINDS = {
    "assessments": ("assessment", "price", models.Commodity),
    "index_values": ("index", "value", models.IndexDefinition),
}


def _thresholds(rows: list[dict], known: Mapping[str, float | None]) -> dict[str, float | None]:
    versions = {row["methodology_version"] for row in rows}
    return {
        v: known[v] if v in known else load_methodology(v).publication.review_threshold
        for v in versions
    }


def thresholds_of(methodology: Methodology) -> dict[str, float | None]:
    """The review threshold of a computation's own methodology, registered or not."""
    return {methodology.version: methodology.publication.review_threshold}


def flag_moves(
    session: Session,
    model,
    key_column: str,
    rows: list[dict],
    now: dt.datetime,
    known: Mapping[str, float | None] | None = None,
) -> None:
    """Set ``flags`` on the rows about to be published and record their alerts.

    ``rows`` are complete vintage rows (with ``methodology_version`` and ``vintage``); the
    standing values they replace are still current in the session. ``known`` gives the
    thresholds of versions the registry may not hold (a backtest's proposed version)."""
    for row in rows:
        row.setdefault("flags", None)
    thresholds = _thresholds(rows, known or {})
    flagged = [row for row in rows if thresholds[row["methodology_version"]] is not None]
    if not flagged:
        return
    kind, value_name, reference = _KINDS[model.__table__.name]
    key = getattr(model, key_column)
    value = getattr(model, value_name)
    keys = {row[key_column] for row in flagged}
    first = min(row["date"] for row in flagged) - dt.timedelta(days=LOOKBACK_DAYS)
    last = max(row["date"] for row in flagged)
    replaced = {(row[key_column], row["date"]) for row in rows}
    history: dict[int, dict[dt.date, float]] = defaultdict(dict)
    for k, day, v in session.execute(
        select(key, model.date, value).where(
            key.in_(keys),
            model.date >= first,
            model.date < last,
            model.superseded_at.is_(None),
            model.status != WITHDRAWN,
            value.is_not(None),
        )
    ):
        if (k, day) not in replaced:
            history[k][day] = v
    for row in rows:
        if row.get(value_name) is not None and row["status"] != WITHDRAWN:
            history[row[key_column]][row["date"]] = row[value_name]
    dates = {k: sorted(days) for k, days in history.items()}
    codes = {
        row.id: row.code
        for row in session.execute(
            select(reference.id, reference.code).where(reference.id.in_(keys))
        )
    }
    alerts = []
    for row in flagged:
        current = row.get(value_name)
        if current is None or row["status"] == WITHDRAWN:
            continue
        k = row[key_column]
        before = bisect.bisect_left(dates[k], row["date"])
        if before == 0:
            continue
        previous_date = dates[k][before - 1]
        previous = history[k][previous_date]
        move = current / previous - 1.0
        threshold = thresholds[row["methodology_version"]]
        if abs(move) > threshold:
            row["flags"] = REVIEW
            alerts.append(
                {
                    "kind": kind,
                    "code": codes[k],
                    "date": row["date"],
                    "vintage": row["vintage"],
                    "value": current,
                    "previous_date": previous_date,
                    "previous_value": previous,
                    "move": move,
                    "threshold": threshold,
                    "methodology_version": row["methodology_version"],
                    "raised_at": now,
                }
            )
    if alerts:
        session.execute(models.Alert.__table__.insert(), alerts)


def flag_list(flags: str | None) -> list[str]:
    """The stored flags as the list every value payload carries."""
    return flags.split() if flags else []


def raised_alerts(session: Session, *, since: dt.datetime | None, limit: int) -> list[models.Alert]:
    """Alerts raised at or after ``since``, oldest first."""
    query = select(models.Alert)
    if since is not None:
        query = query.where(models.Alert.raised_at >= since)
    return list(
        session.scalars(query.order_by(models.Alert.raised_at, models.Alert.id).limit(limit))
    )

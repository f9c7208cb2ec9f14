"""The traded value of each commodity over a rebalance's data year: Σ price × quantity of
every active trade, or of the trades that qualified for their window's assessment.

Which trades and which year follow ``rebalance.traded_value`` and ``data_year_cut`` of the
computation's methodology. Whether a trade qualified is decided by the assessment of its
window under the version in force on the window's day, as the fixing decided it (lot,
arm's length, exclusion).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core.calendar import Calendar
from index.computation import Computation, assess_trades, epoch_ms
from index.inputs import load_trades
from index.kernels import assessment as kernel
from store import models

DAYS_PER_PASS = 31
"""Windows assessed together: a year of trades is read a month at a time."""


@dataclass(frozen=True)
class DataYear:
    """The trades the weights effective in ``year`` rest on (see ``Calendar.data_year``)."""

    cut: str
    begin: dt.datetime
    end: dt.datetime
    """At the methodology's cut-off, or midnight: ``[begin, end)`` at midnight, ``(begin,
    end]`` at the cut-off."""
    bounds: dict[str, tuple[dt.datetime, dt.datetime]]
    """The same per commodity code (at its own cut-off)."""
    first_day: dt.date
    last_day: dt.date
    """Local dates the year covers (at the cut-off: the first and last window's day)."""

    @classmethod
    def of(cls, calendar: Calendar, year: int, codes: list[str]) -> DataYear:
        cut = calendar.methodology.rebalance.data_year_cut
        bounds = {code: calendar.data_year(year, code) for code in codes}
        begin, end = calendar.data_year(year)
        if cut == "midnight":
            first, last = calendar.local_date(begin), calendar.local_date(end) - dt.timedelta(1)
        else:
            first = calendar.next_publication_day(calendar.local_date(begin))
            last = calendar.local_date(end)
        return cls(cut, begin, end, bounds, first, last)

    def holds(self, code: str, instants_ms: np.ndarray) -> np.ndarray:
        begin, end = (epoch_ms(b) for b in self.bounds[code])
        if self.cut == "midnight":
            return (instants_ms >= begin) & (instants_ms < end)
        return (instants_ms > begin) & (instants_ms <= end)


def all_trades(session: Session, year: DataYear, ids: dict[str, int]) -> dict[int, float]:
    """Σ price × quantity of every active trade in the data year, by commodity id."""
    if year.cut == "midnight":
        inside = (models.Trade.traded_at >= year.begin) & (models.Trade.traded_at < year.end)
    else:
        inside = or_(
            *(
                (models.Trade.commodity_id == ids[code])
                & (models.Trade.traded_at > begin)
                & (models.Trade.traded_at <= end)
                for code, (begin, end) in year.bounds.items()
            )
        )
    rows = session.execute(
        select(models.Trade.commodity_id, func.sum(models.Trade.price * models.Trade.quantity))
        .where(models.Trade.status == "active", inside)
        .group_by(models.Trade.commodity_id)
    ).all()
    return {commodity_id: float(value or 0.0) for commodity_id, value in rows}


def qualifying_trades(
    session: Session, computation: Computation, year: DataYear
) -> dict[int, float]:
    """Σ price × quantity of the data year's trades that qualified for their window's
    assessment, by commodity id; each window judged under the version in force on its day."""
    calendar = computation.calendar
    if year.cut == "midnight":
        first, last = calendar.window_day(year.begin), calendar.window_day(year.end)
    else:
        first, last = year.first_day, year.last_day
    reference = computation.reference
    totals = np.zeros(len(reference.ids))
    for methodology, days in _runs(computation, calendar.publication_days(first, last)):
        part = computation.under(methodology)
        for start in range(0, len(days), DAYS_PER_PASS):
            closes = part.window_closes(days[start : start + DAYS_PER_PASS])
            trades = load_trades(session, int(closes.min()), int(closes.max()), reference)
            if trades.size == 0:
                continue
            used = assess_trades(trades, closes, part.rules()).flags == kernel.USED
            for c, code in enumerate(reference.codes):
                mine = used & (trades.commodity == c)
                mine[mine] = year.holds(code, trades.time[mine])
                totals[c] += float(np.sum(trades.price[mine] * trades.quantity[mine]))
    return {reference.ids[c]: float(totals[c]) for c in range(len(reference.ids))}


def _runs(computation: Computation, days: list[dt.date]):
    """``days`` in runs of consecutive days governed by one version."""
    runs: list[tuple] = []
    for day in days:
        methodology = computation.methodology_on(day)
        if runs and runs[-1][0].version == methodology.version:
            runs[-1][1].append(day)
        else:
            runs.append((methodology, [day]))
    return runs


def traded_values(
    session: Session, computation: Computation, year: int
) -> tuple[DataYear, dict[int, float]]:
    """The data year of the weights effective in ``year`` under the computation's
    methodology and each commodity's traded value in it, by commodity id, in the
    commodity's currency."""
    reference = computation.reference
    data_year = DataYear.of(computation.calendar, year, reference.codes)
    if computation.methodology.rebalance.traded_value == "qualifying":
        return data_year, qualifying_trades(session, computation, data_year)
    ids = dict(zip(reference.codes, reference.ids, strict=True))
    return data_year, all_trades(session, data_year, ids)

"""Compute and publish assessments and every index for a range of Beijing trading days.

The demo, the CLI, the scheduled fixing and the restatement sweep call :func:`compute`;
the intraday job calls :func:`index.intraday.publish_provisional`, which shares the steps.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy.orm import Session

from audit.journal import journal_computation
from bcpi.errors import InvalidRange
from index import store_io
from index.assessment import KernelParameters, assess_windows, failed_tests
from index.fallback import LEVELS, resolve_day
from index.levels import recompute
from index.methodology import BEIJING_UTC_OFFSET_MS, Methodology, in_force
from index.publish import PublishCounts, publish_vintages
from index.rationale import assessment_rationale, canonical_hash, finite_or_none
from index.windows import (
    Calendar,
    MethodologyCalendar,
    close_instant,
    epoch_ms,
    step_trading_day,
    trading_days,
    window_closes,
)
from reliability.faults import fault_point
from store import models

BEIJING = dt.timezone(dt.timedelta(milliseconds=BEIJING_UTC_OFFSET_MS))


@dataclass
class ComputeReport:
    start: dt.date
    end: dt.date
    trades: int = 0
    assessments: PublishCounts = field(default_factory=PublishCounts)
    index_values: PublishCounts = field(default_factory=PublishCounts)
    skipped: dict[str, str] = field(default_factory=dict)
    pending_days: list[dt.date] = field(default_factory=list)
    """Trading days in the range whose window had not closed at ``now``: not assessed."""
    fallbacks: dict[str, int] = field(default_factory=dict)
    """Assessments published per fallback level name."""
    closed_days: list[dt.date] = field(default_factory=list)
    """Calendar trading days without a single trade in any commodity: market holidays."""


@dataclass
class Engine:
    """The methodology and calendar a computation runs under, with the reference data."""

    methodology: Methodology
    calendar: Calendar
    reference: store_io.Reference
    open_days: list[dt.date] = field(default_factory=list)
    """Days the market was open (sorted): stale days and spread ages count these."""

    @classmethod
    def load(
        cls, session: Session, methodology: Methodology | None, calendar: Calendar | None
    ) -> Engine:
        methodology = methodology or in_force()
        return cls(
            methodology,
            calendar or MethodologyCalendar(methodology.calendar),
            store_io.Reference.load(session),
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.methodology.calendar.timezone)

    def rules(self):
        return [self.methodology.assessment.rule(code) for code in self.reference.codes]

    def trading_days_between(self, earlier: dt.date, later: dt.date) -> int:
        """Open market days in ``(earlier, later]``."""
        return bisect.bisect_right(self.open_days, later) - bisect.bisect_right(
            self.open_days, earlier
        )

    def window_closed(self, day: dt.date, now: dt.datetime) -> bool:
        return all(close_instant(day, r.cutoff, self.zone) <= now for r in self.rules())


def assess(
    session: Session,
    engine: Engine,
    days: list[dt.date],
    now: dt.datetime,
    report,
    *,
    status: str = "final",
    until: dt.datetime | None = None,
    skip_fixed: bool = False,
) -> None:
    """Assess every commodity on ``days`` (consecutive trading days) and publish.

    With ``until``, the last day's window closes at ``until`` (an intraday view).
    """
    if not days:
        return
    methodology, reference = engine.methodology, engine.reference
    rules = engine.rules()
    previous = step_trading_day(engine.calendar, days[0], -1)
    closes = window_closes(days, previous, [r.cutoff for r in rules], engine.zone)
    scheduled = closes.copy()
    if until is not None:
        closes[:, -1] = np.maximum(np.minimum(closes[:, -1], epoch_ms(until)), closes[:, -2] + 1)
    trades = store_io.load_trades(session, int(closes.min()), int(closes.max()), reference)
    report.trades = trades.size
    stats = assess_windows(
        trades.commodity,
        trades.time,
        trades.price,
        trades.quantity,
        trades.exchange,
        closes,
        KernelParameters.from_rules(rules),
        with_flags=True,
    )
    windows = trades.by_window(closes, stats.flags)
    is_open = stats.window_trades.sum(axis=0) > 0
    report.closed_days = [day for d, day in enumerate(days) if not is_open[d]]
    state = store_io.fallback_state(session, engine, days[0])
    engine.open_days = sorted(
        set(store_io.assessment_dates(session, state.earliest(), days[0]))
        | {day for d, day in enumerate(days) if is_open[d]}
    )
    related = {r.code: r.related for r in rules if r.related}
    fixed = store_io.fixed_assessments(session, days) if skip_fixed else set()

    rows = []
    for d, day in enumerate(days):
        if not is_open[d]:
            continue
        primary = {
            code: float(stats.vwap[c, d]) if stats.shortfall[c, d] == 0 else None
            for c, code in enumerate(reference.codes)
        }
        decisions = resolve_day(
            day,
            primary,
            related,
            state,
            engine.trading_days_between,
            stale_days=methodology.assessment.stale_days,
            related_max_age_days=methodology.assessment.related_max_age_days,
        )
        for c, code in enumerate(reference.codes):
            if (reference.ids[c], day) in fixed:
                continue
            decision = decisions[code]
            basis_c = (
                reference.codes.index(decision.detail["commodity"])
                if (decision.name == "related")
                else c
            )
            own, basis = windows[(c, d)], windows[(basis_c, d)]
            rule = rules[c]
            window = {
                "trading_day": day.isoformat(),
                "opens_after": _local_iso(closes[c, d], engine.zone),
                "closes_at": _local_iso(scheduled[c, d + 1], engine.zone),
            }
            if until is not None:
                window["trades_through"] = until.astimezone(engine.zone).isoformat()
            statistics = {
                "window_trades": int(stats.window_trades[c, d]),
                "lot_trades": int(stats.lot_trades[c, d]),
                "center": finite_or_none(stats.center[c, d]),
                "scale": finite_or_none(stats.scale[c, d]),
                "band": _band(stats.center[c, d], stats.scale[c, d], rule.k),
                "qualifying_trades": int(stats.trades[c, d]),
                "volume": float(stats.volume[c, d]),
                "exchanges": int(stats.exchanges[c, d]),
                "top_exchange_share": finite_or_none(stats.top_share[c, d]),
                "vwap": finite_or_none(stats.vwap[c, d]),
            }
            rationale = assessment_rationale(
                methodology_version=methodology.version,
                parameters=methodology.parameters(code),
                window=window,
                statistics=statistics,
                failed=failed_tests(int(stats.shortfall[c, d])),
                fallback={"level": decision.level, "name": decision.name, **decision.detail},
                own=own,
                basis=None if decision.name in ("stale", "suspended") else basis,
                outlier_rule=f"outlier_{rule.exclusion}",
                limit=methodology.assessment.listed_trades_limit,
            )
            factor = decision.detail.get("factor", 1.0)
            on_basis = decision.name in ("none", "related")
            row = {
                "commodity_id": reference.ids[c],
                "date": day,
                "price": decision.price,
                "trades": int(stats.trades[basis_c, d]),
                "volume": float(stats.volume[basis_c, d]),
                "high": finite_or_none(stats.high[basis_c, d] * factor) if on_basis else None,
                "low": finite_or_none(stats.low[basis_c, d] * factor) if on_basis else None,
                "exchanges": int(stats.exchanges[basis_c, d]),
                "fallback": decision.name,
                "rationale": rationale,
            }
            # The instant of an intraday view is not an input: the trades seen by then are.
            stable = {**rationale, "window": {**window, "trades_through": None}}
            row["inputs_hash"] = canonical_hash(
                row | {"date": day.isoformat(), "rationale": stable}
            )
            rows.append(row)
            report.fallbacks[decision.name] = report.fallbacks.get(decision.name, 0) + 1
    report.assessments = publish_vintages(
        session,
        models.Assessment,
        "commodity_id",
        rows,
        now=now,
        methodology_version=methodology.version,
        status=status,
    )


def _local_iso(instant_ms: int, zone: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(int(instant_ms) / 1000, zone).isoformat()


def _band(center: float, scale: float, k: float) -> list[float] | None:
    if not (np.isfinite(center) and np.isfinite(scale)) or scale == 0:
        return None
    return [float(center - k * scale), float(center + k * scale)]


def publish_index_values(
    session: Session,
    engine: Engine,
    publish_from: dt.date,
    now: dt.datetime,
    report,
    *,
    status: str = "final",
    only_day: dt.date | None = None,
    include_provisional: bool = False,
) -> list[dict]:
    """Recompute every index from its base date; publish values from ``publish_from`` on.

    Returns the published rows (with ``index_id``, ``date``, ``value``).
    """
    plans = store_io.index_plans(session, engine.reference)
    if not plans:
        return []
    history = store_io.assessment_history(
        session, min(p.base_date for p in plans), engine.reference, include_provisional
    )
    results = recompute(history.days, history.prices, history.present, plans)
    skip = store_io.fixed_index_values(session, only_day) if only_day else set()
    rows, constants = [], []
    for result in results:
        plan = result.plan
        if result.skipped:
            report.skipped[plan.code] = result.skipped
            continue
        if result.chained is not None:
            constants.extend(store_io.constant_rows(result, history, engine.methodology))
        for position, t in enumerate(result.rows):
            day = history.days[t].item()
            value = float(result.values[position])
            if day < publish_from or (only_day and day != only_day) or not np.isfinite(value):
                continue
            if (plan.index_id, day) in skip:
                continue
            rationale = store_io.index_rationale(
                plan, result, position, history, engine.reference, engine.methodology
            )
            row = {"index_id": plan.index_id, "date": day, "value": value, "rationale": rationale}
            row["inputs_hash"] = canonical_hash(
                {"value": value, "rationale": rationale, "date": day.isoformat()}
            )
            rows.append(row)
    report.index_values = publish_vintages(
        session,
        models.IndexValue,
        "index_id",
        rows,
        now=now,
        methodology_version=engine.methodology.version,
        status=status,
    )
    if only_day is None:
        store_io.save_constants(session, constants, now)
    return rows


def compute(
    session: Session,
    start: dt.date,
    end: dt.date,
    *,
    now: dt.datetime | None = None,
    methodology: Methodology | None = None,
    calendar: Calendar | None = None,
) -> ComputeReport:
    """Assess every commodity for the trading days ``start``..``end`` whose window has
    closed at ``now``, then recompute every index and publish its values from ``start`` on.

    Only changed values are published (as new vintages). ``methodology`` defaults to the
    version in force, ``calendar`` to the methodology's trading calendar.
    """
    if end < start:
        raise InvalidRange(f"end {end} is before start {start}", start=start, end=end)
    now = now or dt.datetime.now(dt.UTC)
    engine = Engine.load(session, methodology, calendar)
    report = ComputeReport(start=start, end=end)
    days = trading_days(engine.calendar, start, end)
    journal_computation(
        session, "compute", start, end, now, engine.methodology.version, engine.calendar
    )
    closed = [d for d in days if engine.window_closed(d, now)]
    report.pending_days = [d for d in days if d not in closed]
    assess(session, engine, closed, now, report)
    fault_point("during_fixing")  # test-only (BCPI_FAULT_POINT); inert otherwise
    rows = publish_index_values(session, engine, start, now, report)
    store_io.record_fixings(session, rows, now)
    return report


__all__ = ["BEIJING", "LEVELS", "ComputeReport", "compute"]

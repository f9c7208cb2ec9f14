"""One computation: the calendar (and so the methodology) it runs under, the reference data
it reads, and the rows it produces: the assessments of publication days, then every
index's values. Publishing the rows is :mod:`publication`'s business."""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.orm import Session

from core.calendar import Calendar
from core.methodology import CommodityRule, Methodology, Segments, load_methodology, version_on
from index import inputs
from index.assessment import KernelParameters, WindowStatistics, assess_windows, failed_tests
from index.fallback import resolve_day
from index.levels import recompute
from index.normalising_constant import constant_rows
from index.rationale import assessment_rationale, canonical_hash, finite_or_none, index_rationale


def epoch_ms(instant: dt.datetime) -> int:
    return round(instant.timestamp() * 1000)


@dataclass
class Computation:
    """The calendar a computation runs under, with the reference data it reads."""

    calendar: Calendar
    reference: inputs.Reference
    open_days: list[dt.date] = field(default_factory=list)
    """Days the market was open (sorted): stale days and spread ages count these."""
    segments: Segments = ()
    """The versions that govern its days (empty: the calendar's every day)."""
    _earlier: dict[str, Methodology] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, session: Session, calendar: Calendar, segments: Segments = ()) -> Computation:
        return cls(calendar, inputs.Reference.load(session), segments=segments)

    def methodology_on(self, day: dt.date) -> Methodology:
        version = version_on(self.segments, day, self.methodology.version)
        if version == self.methodology.version:
            return self.methodology
        if version not in self._earlier:
            self._earlier[version] = load_methodology(version)
        return self._earlier[version]

    def under(self, methodology: Methodology) -> Computation:
        """This computation's reference data under ``methodology`` alone."""
        return Computation(self.calendar.under(methodology), self.reference)

    @property
    def methodology(self) -> Methodology:
        return self.calendar.methodology

    def rules(self) -> list[CommodityRule]:
        return [self.methodology.assessment.rule(code) for code in self.reference.codes]

    def trading_days_between(self, earlier: dt.date, later: dt.date) -> int:
        """Open market days in ``(earlier, later]``."""
        return bisect.bisect_right(self.open_days, later) - bisect.bisect_right(
            self.open_days, earlier
        )

    def window_closed(self, day: dt.date, now: dt.datetime) -> bool:
        """Is ``day`` due for its fixing at ``now``: every window closed and the reporting
        grace after the cut-offs passed?"""
        return self.calendar.fixing_at(day) <= now and all(
            self.calendar.cutoff(day, code) <= now for code in self.reference.codes
        )

    def window_closes(self, days: list[dt.date]) -> np.ndarray:
        """``closes[c, j]``: cut-off (epoch ms) of commodity c on ``[previous, *days][j]``,
        ``previous`` the publication day before ``days[0]``; window j ≥ 1 of commodity c is
        ``(closes[c, j - 1], closes[c, j]]``."""
        all_days = [self.calendar.previous_publication_day(days[0]), *days]
        return np.array(
            [
                [epoch_ms(self.calendar.cutoff(d, code)) for d in all_days]
                for code in self.reference.codes
            ],
            dtype=np.int64,
        ).reshape(len(self.reference.codes), len(all_days))


def assess_trades(
    trades: inputs.Trades, closes: np.ndarray, rules: list[CommodityRule]
) -> WindowStatistics:
    """The stored ``trades`` assessed in the windows ``closes`` under ``rules``, each
    trade's verdict included: the one call that hands stored trades to the kernel."""
    return assess_windows(
        trades.commodity,
        trades.time,
        trades.price,
        trades.quantity,
        trades.exchange,
        closes,
        KernelParameters.from_rules(rules),
        with_flags=True,
        **trades.participants(),
    )


@dataclass
class AssessedDays:
    rows: list[dict] = field(default_factory=list)
    trades: int = 0
    closed_days: list[dt.date] = field(default_factory=list)
    """Publication days without a single trade in any commodity: market holidays."""
    fallbacks: dict[str, int] = field(default_factory=dict)
    """Assessments per fallback level name."""


def assess_days(
    session: Session,
    computation: Computation,
    days: list[dt.date],
    *,
    until: dt.datetime | None = None,
    skip_fixed: bool = False,
) -> AssessedDays:
    """Every commodity's assessment row on ``days`` (consecutive publication days).

    With ``until``, the last day's window closes at ``until`` (an intraday view).
    """
    out = AssessedDays()
    if not days:
        return out
    methodology, reference = computation.methodology, computation.reference
    zone = computation.calendar.zone
    rules = computation.rules()
    closes = computation.window_closes(days)
    scheduled = closes.copy()
    if until is not None:
        closes[:, -1] = np.maximum(np.minimum(closes[:, -1], epoch_ms(until)), closes[:, -2] + 1)
    trades = inputs.load_trades(session, int(closes.min()), int(closes.max()), reference)
    out.trades = trades.size
    stats = assess_trades(trades, closes, rules)
    windows = trades.by_window(closes, stats.flags)
    is_open = stats.window_trades.sum(axis=0) > 0
    out.closed_days = [day for d, day in enumerate(days) if not is_open[d]]
    related = {r.code: r.related for r in rules if r.related}
    state = inputs.fallback_state(
        session,
        reference,
        related,
        days[0],
        methodology.assessment.related_max_age_days,
    )
    computation.open_days = sorted(
        set(inputs.assessment_dates(session, state.earliest(), days[0]))
        | {day for d, day in enumerate(days) if is_open[d]}
    )
    fixed = inputs.fixed_assessments(session, days) if skip_fixed else set()
    refused = inputs.band_rejections(session, days, reference)

    def local_iso(instant_ms: int) -> str:
        return dt.datetime.fromtimestamp(int(instant_ms) / 1000, zone).isoformat()

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
            computation.trading_days_between,
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
                "opens_after": local_iso(closes[c, d]),
                "closes_at": local_iso(scheduled[c, d + 1]),
            }
            if until is not None:
                window["trades_through"] = until.astimezone(zone).isoformat()
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
                **(
                    {"top_participant_share": finite_or_none(stats.top_participant_share[c, d])}
                    if rule.max_participant_share < 1.0
                    else {}
                ),
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
            if (c, day) in refused:  # shown, not an input: the band refused these rows
                rationale["rejected_at_ingest"] = {"price_out_of_band": refused[(c, day)]}
            row["inputs_hash"] = canonical_hash(
                row | {"date": day.isoformat(), "rationale": stable}
            )
            out.rows.append(row)
            out.fallbacks[decision.name] = out.fallbacks.get(decision.name, 0) + 1
    return out


def _band(center: float, scale: float, k: float) -> list[float] | None:
    if not (np.isfinite(center) and np.isfinite(scale)) or scale == 0:
        return None
    return [float(center - k * scale), float(center + k * scale)]


@dataclass
class IndexRows:
    rows: list[dict] = field(default_factory=list)
    """Rows with ``index_id``, ``date``, ``value``, ``rationale`` and ``inputs_hash``."""
    constants: list[dict] = field(default_factory=list)
    """The normalising constant of every weight period that has begun."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Indices not computed, with the reason."""
    started: dict[int, dt.date] = field(default_factory=dict)
    """The base day of every index computed that had not started: the rows rest on it."""


def index_value_rows(
    session: Session,
    computation: Computation,
    publish_from: dt.date,
    *,
    only_day: dt.date | None = None,
    include_provisional: bool = False,
) -> IndexRows:
    """Recompute every index from its base date; the rows of values from ``publish_from`` on
    (only ``only_day``'s, when given, and none already fixed on it)."""
    out = IndexRows()
    plans = inputs.index_plans(session, computation.reference)
    if not plans:
        return out
    history = inputs.assessment_history(
        session, min(p.base_date for p in plans), computation.reference, include_provisional
    )
    results = recompute(history.days, history.prices, history.present, plans)
    skip = inputs.fixed_index_values(session, only_day) if only_day else set()
    for result in results:
        plan = result.plan
        if result.skipped:
            out.skipped[plan.code] = result.skipped
            continue
        if not plan.started:
            out.started[plan.index_id] = result.base_date
        if result.chained is not None:
            out.constants.extend(constant_rows(result, history, computation.methodology))
        for position, t in enumerate(result.rows):
            day = history.days[t].item()
            value = float(result.values[position])
            if day < publish_from or (only_day and day != only_day) or not np.isfinite(value):
                continue
            if (plan.index_id, day) in skip:
                continue
            methodology = computation.methodology_on(day)
            rationale = index_rationale(
                plan, result, position, history, computation.reference, methodology
            )
            row = {"index_id": plan.index_id, "date": day, "value": value, "rationale": rationale}
            row["inputs_hash"] = canonical_hash(
                {"value": value, "rationale": rationale, "date": day.isoformat()}
            )
            row["methodology_version"] = methodology.version
            out.rows.append(row)
    return out

"""The fixing: assess publication days, publish their assessments and every index's values.

:func:`compute` is the one computation over a range of days: the CLI, the demo, the
scheduled fixing, the restatement sweep and an audit replay all call it, with the calendar
they run under. A value already published on a day the calendar no longer counts as a
publication day is withdrawn; a value whose inputs changed is restated; each such change
of a fixed index value gets a correction notice. The intraday job calls
:func:`publication.intraday.publish_provisional`, which shares the steps.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select, union, update
from sqlalchemy.orm import Session

from core.calendar import Calendar
from core.errors import InvalidRange
from core.faults import fault_point
from core.methodology import load_methodology, replaced, segments
from core.progress import SILENT, Steps
from core.settings import get_settings
from index.computation import Computation, assess_days, index_value_rows
from index.normalising_constant import save_constants
from publication.correction import Cause, CorrectionNotice, record_corrections
from publication.ohlc import close_days, withdraw_days
from publication.review import thresholds_of
from publication.vintage import (
    Forced,
    PublishCounts,
    Restating,
    publish_vintages,
    withdraw_vintages,
)
from store import models
from store.ledger import journal_computation
from store.models import FINAL, FIXED, PROVISIONAL


@dataclass
class Published:
    """What a computation published."""

    trades: int = 0
    assessments: PublishCounts = field(default_factory=PublishCounts)
    index_values: PublishCounts = field(default_factory=PublishCounts)
    skipped: dict[str, str] = field(default_factory=dict)
    """Indices not computed, with the reason."""
    fallbacks: dict[str, int] = field(default_factory=dict)
    """Assessments published per fallback level name."""
    closed_days: list[dt.date] = field(default_factory=list)
    """Publication days without a single trade in any commodity: market holidays."""


@dataclass(kw_only=True)
class ComputeReport(Published):
    start: dt.date
    end: dt.date
    pending_days: list[dt.date] = field(default_factory=list)
    """Publication days in the range whose window had not closed at ``now``: not assessed."""
    withdrawn_days: list[dt.date] = field(default_factory=list)
    """Days of the range that had values but are not publication days: values withdrawn."""
    corrections: list[CorrectionNotice] = field(default_factory=list)


KEYS = {models.Assessment: "commodity_id", models.IndexValue: "index_id"}


def default_calendar() -> Calendar:
    """The calendar of the methodology in force, as this process is configured."""
    return Calendar.from_settings(get_settings())


def rules_at(calendar: Calendar, now: dt.datetime, forced: Forced | None = None) -> Restating:
    """What a computation at ``now`` may change: values inside the correction window, values
    of versions its methodology supersedes, and what an operator ``forced``."""
    methodology = calendar.methodology
    window = methodology.publication.correction_window_days
    return Restating(
        methodology.version,
        replaced(methodology),
        calendar.publication_days_before(calendar.local_date(now), window),
        forced,
        segments(methodology),
    )


def _publish(session, rules, model, rows, now, status, before: PublishCounts, methodology):
    """Publish ``rows`` as vintages; the counts keep the withdrawals already made."""
    key = KEYS[model]
    counts = publish_vintages(
        session,
        model,
        key,
        rows,
        now=now,
        rules=rules,
        status=status,
        review=thresholds_of(methodology),
    )
    return before.merged(counts)


def publish_assessments(
    session: Session,
    computation: Computation,
    days: list[dt.date],
    now: dt.datetime,
    report,
    *,
    rules: Restating | None = None,
    status: str = FINAL,
    until: dt.datetime | None = None,
    skip_fixed: bool = False,
) -> None:
    """Assess every commodity on ``days`` (consecutive publication days) and publish what
    ``rules`` (default: no freeze) let change."""
    assessed = assess_days(session, computation, days, until=until, skip_fixed=skip_fixed)
    report.trades += assessed.trades
    report.closed_days += assessed.closed_days
    for name, count in assessed.fallbacks.items():
        report.fallbacks[name] = report.fallbacks.get(name, 0) + count
    rules = rules or Restating(computation.methodology.version)
    report.assessments = _publish(
        session,
        rules,
        models.Assessment,
        assessed.rows,
        now,
        status,
        report.assessments,
        computation.methodology,
    )


def publish_index_values(
    session: Session,
    computation: Computation,
    publish_from: dt.date,
    now: dt.datetime,
    report,
    *,
    rules: Restating | None = None,
    status: str = FINAL,
    only_day: dt.date | None = None,
    include_provisional: bool = False,
) -> list[dict]:
    """Recompute every index from its base date; publish values from ``publish_from`` on
    that ``rules`` (default: no freeze) let change.

    Returns the rows that stand (with ``index_id``, ``date``, ``value``): published or
    unchanged, not frozen.
    """
    computed = index_value_rows(
        session,
        computation,
        publish_from,
        only_day=only_day,
        include_provisional=include_provisional,
    )
    report.skipped.update(computed.skipped)
    rules = rules or Restating(computation.methodology.version)
    report.index_values = _publish(
        session,
        rules,
        models.IndexValue,
        computed.rows,
        now,
        status,
        report.index_values,
        computation.methodology,
    )
    _record_starts(session, computed.started, computed.rows)
    if only_day is None:
        save_constants(session, computed.constants, now)
    kept = report.index_values.kept
    return [row for row in computed.rows if (row["index_id"], row["date"]) not in kept]


def _record_starts(session: Session, started: dict[int, dt.date], rows: list[dict]) -> None:
    """An index publishing its first values records the base day they rest on, for good."""
    published = {row["index_id"] for row in rows}
    for index_id, day in started.items():
        if index_id in published:
            session.execute(
                update(models.IndexDefinition)
                .where(
                    models.IndexDefinition.id == index_id,
                    models.IndexDefinition.started_on.is_(None),
                )
                .values(started_on=day)
            )


def _days_with_values(session: Session, start: dt.date, end: dt.date) -> list[dt.date]:
    """Dates in ``start..end`` with a current value that stands (fixed or provisional)."""
    statuses = (*FIXED, PROVISIONAL)
    query = union(
        *(
            select(model.date).where(
                model.superseded_at.is_(None),
                model.status.in_(statuses),
                model.date >= start,
                model.date <= end,
            )
            for model in (models.Assessment, models.IndexValue)
        )
    )
    return sorted(session.scalars(query))


def withdraw_non_publication_days(
    session: Session,
    calendar: Calendar,
    start: dt.date,
    end: dt.date,
    now: dt.datetime,
    report: ComputeReport,
    rules: Restating,
) -> None:
    """Withdraw the values of every day in ``start..end`` that is not a publication day (as
    far as ``rules`` let them change)."""
    days = [d for d in _days_with_values(session, start, end) if not calendar.is_publication_day(d)]
    report.assessments.withdrawn = withdraw_vintages(
        session, models.Assessment, KEYS[models.Assessment], days, now=now, rules=rules
    )
    report.index_values.withdrawn = withdraw_vintages(
        session, models.IndexValue, KEYS[models.IndexValue], days, now=now, rules=rules
    )
    remaining = set(_days_with_values(session, start, end))
    report.withdrawn_days = [d for d in days if d not in remaining]
    withdraw_days(session, report.withdrawn_days, now)


def _runs(days: list[dt.date], rules: Restating) -> list[tuple[str, list[dt.date]]]:
    """``days`` in runs of consecutive days governed by one version."""
    runs: list[tuple[str, list[dt.date]]] = []
    for day in days:
        version = rules.version_on(day)
        if runs and runs[-1][0] == version:
            runs[-1][1].append(day)
        else:
            runs.append((version, [day]))
    return runs


def compute(
    session: Session,
    start: dt.date,
    end: dt.date,
    *,
    now: dt.datetime | None = None,
    calendar: Calendar | None = None,
    cause: Cause = Cause(),
    forced: Forced | None = None,
    rules: Restating | None = None,
    steps: Steps = SILENT,
) -> ComputeReport:
    """Assess every commodity for the publication days ``start..end`` whose window has
    closed at ``now``, then recompute every index and publish its values from ``start`` on.

    Only changed values are published (as new vintages), and a fixed value only inside the
    correction window, or where the methodology corrects the version it was made under, or
    where an operator ``forced`` it; values on days of the range that are not publication
    days are withdrawn. Every fixed value changed gets a correction notice (``cause`` says
    why). ``calendar`` defaults to :func:`default_calendar`; ``rules`` (what may change)
    to the correction window at ``now`` and ``forced`` (a replay gives the recorded ones).
    ``steps`` hears each phase.
    """
    if end < start:
        raise InvalidRange(f"end {end} is before start {start}", start=start, end=end)
    now = now or dt.datetime.now(dt.UTC)
    calendar = calendar or default_calendar()
    rules = rules or rules_at(calendar, now, forced)
    computation = Computation.load(session, calendar, rules.segments)
    report = ComputeReport(start=start, end=end)
    days = calendar.publication_days(start, end)
    journal_computation(session, "compute", start, end, now, calendar, rules.record())
    steps.phase("withdrawing values of days that are not publication days")
    withdraw_non_publication_days(session, calendar, start, end, now, report, rules)
    closed = [d for d in days if computation.window_closed(d, now)]
    report.pending_days = [d for d in days if d not in closed]
    for version, run in _runs(closed, rules):
        steps.phase(f"assessing {len(run)} publication days ({run[0]}..{run[-1]}) under {version}")
        part = computation
        if version != calendar.methodology.version:
            part = computation.under(load_methodology(version))
        publish_assessments(session, part, run, now, report, rules=rules.running(version))
    fault_point("during_fixing")
    steps.phase(f"computing the indices from {start}")
    rows = publish_index_values(session, computation, start, now, report, rules=rules)
    steps.phase("noting what changed in published values")
    report.corrections = record_corrections(session, now, cause, rules)
    close_days(session, rows, now)
    return report

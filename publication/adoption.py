"""Adopting a methodology version: validated, stored with its SHA-256, on the operator log.

A version that takes effect after the last published day changes nothing published and is
adopted as it is. One that takes effect on or before it would change published values:
refused (:class:`~core.errors.AdoptionRefused`, naming them) unless the operator forces it
with a reason, and then every value from its effective date is recomputed under it through
the one door (notices with reason ``methodology_change``, marked forced where the value
was outside the correction window).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.calendar import Calendar
from core.errors import AdoptionRefused, InvalidInput, MethodologyError
from core.methodology import Version, registry
from publication.correction import Cause
from publication.fixing import ComputeReport, compute, default_calendar
from publication.vintage import Forced
from store import models
from store.methodology_versions import PublishedFrom, published_from, record_version
from store.models import IN_FORCE
from store.operator_log import Operator, record_act

ADOPT = "methodology.adopt"


@dataclass
class Adoption:
    version: str
    effective_from: dt.date
    sha256: str
    forced: bool
    would_change: PublishedFrom | None
    compute: ComputeReport | None = None


def read_version(document: str, origin: str) -> Version:
    """The version in ``document``, or an :class:`InvalidInput` naming what is wrong."""
    try:
        return Version.of(document, "adopted", origin)
    except MethodologyError as exc:
        raise InvalidInput("methodology", exc.message) from None


def refuse_known(session: Session, version: Version) -> None:
    """Refuse a version the deployment holds with another document, or already in force."""
    methodology = version.methodology
    stored = session.get(models.MethodologyVersion, methodology.version)
    if stored is not None and stored.sha256 != version.sha256:
        raise AdoptionRefused(
            f"methodology {methodology.version} is already {stored.source} with SHA-256 "
            f"{stored.sha256}; a version is never edited: give the change a new version",
            version=methodology.version,
        )
    if stored is not None and stored.state == IN_FORCE:
        raise AdoptionRefused(
            f"methodology {methodology.version} is already in force (SHA-256 {stored.sha256})",
            version=methodology.version,
        )


def check_adoption(
    session: Session, version: Version, *, force: bool, reason: str | None
) -> PublishedFrom | None:
    """What adopting ``version`` would change; refuses what may not be adopted."""
    methodology = version.methodology
    refuse_known(session, version)
    if force and not (reason and reason.strip()):
        raise InvalidInput("reason", "a forced adoption needs the operator's reason")
    would_change = published_from(session, methodology.effective_from)
    if would_change is not None and not force:
        raise would_change.refusal(methodology)
    return would_change


def adopt(
    session: Session,
    version: Version,
    operator: Operator,
    *,
    force: bool = False,
    reason: str | None = None,
    now: dt.datetime | None = None,
    calendar: Calendar | None = None,
) -> Adoption:
    """Adopt ``version`` (see the module). With ``force``, values it changes are restated."""
    now = now or dt.datetime.now(dt.UTC)
    methodology = version.methodology
    would_change = check_adoption(session, version, force=force, reason=reason)
    record_version(
        session,
        version,
        now,
        adopted_by=operator.name,
        reason=reason,
        forced=would_change is not None,
    )
    registry.register(version)
    try:
        adoption = Adoption(
            methodology.version, methodology.effective_from, version.sha256, force, would_change
        )
        if would_change is not None:
            adoption.compute = _restate(
                session, would_change, methodology.version, reason, now, calendar
            )
        record_act(
            session,
            operator,
            ADOPT,
            {
                "version": methodology.version,
                "effective_from": methodology.effective_from,
                "sha256": version.sha256,
                "forced": force,
                "restated": len(adoption.compute.corrections) if adoption.compute else 0,
            },
            reason=reason,
            now=now,
        )
    except BaseException:
        registry.forget_adopted()
        raise
    return adoption


def _restate(session, would_change, version, reason, now, calendar) -> ComputeReport:
    calendar = (calendar or default_calendar()).under(registry.in_force())
    keys = {("assessments", c) for c in session.scalars(select(models.Commodity.id))}
    keys |= {("index_values", i) for i in session.scalars(select(models.IndexDefinition.id))}
    forced = Forced(frozenset(keys), would_change.first, would_change.last)
    cause = Cause(
        reason="methodology_change", detail=f"methodology {version}: {reason}", forced=True
    )
    return compute(
        session,
        would_change.first,
        would_change.last,
        now=now,
        calendar=calendar,
        cause=cause,
        forced=forced,
    )

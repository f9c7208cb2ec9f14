"""The methodology versions a deployment knows, kept in its database and registered in
every process that opens it.

A deployment records every shipped version the first time it sees it: in force as dated
when nothing published on or after its effective date would change, otherwise *held*
until an operator adopts it (``bcpi methodology adopt``). A shipped correction (a version
that declares the ``change`` it makes to the version it supersedes) is in force as dated:
it exists to restate. Adopted versions carry their document, who adopted them and why.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.catalogue import Catalogue
from core.errors import AdoptionRefused, ReferenceDataConflict
from core.methodology import Methodology, Version, registry
from store import models
from store.models import FIXED, HELD, IN_FORCE, MethodologyVersion
from store.reference_guard import check_catalogue

log = logging.getLogger("bcpi.methodology")


@dataclass(frozen=True)
class PublishedFrom:
    """Fixed index values published for ``first`` .. ``last``, on or after a day."""

    count: int
    indices: tuple[str, ...]
    first: dt.date
    last: dt.date

    def describe(self) -> str:
        names = ", ".join(self.indices[:8]) + (" …" if len(self.indices) > 8 else "")
        return (
            f"{self.count} published values of {len(self.indices)} indices ({names}) "
            f"from {self.first} to {self.last}"
        )

    def refusal(self, methodology: Methodology) -> AdoptionRefused:
        """The error that refuses ``methodology``, which would restate these values."""
        return AdoptionRefused(
            f"methodology {methodology.version} takes effect on {methodology.effective_from}, "
            f"on or before the last published day: {self.describe()} would be restated under "
            f"it. Give it an effective date after {self.last}, or adopt it with "
            "`bcpi methodology adopt FILE --force --reason`",
            version=methodology.version,
            published=self.count,
            indices=list(self.indices),
            first=self.first.isoformat(),
            last=self.last.isoformat(),
        )


def published_from(session: Session, day: dt.date) -> PublishedFrom | None:
    """The fixed index values standing on or after ``day`` (``None``: none)."""
    current = (
        models.IndexValue.superseded_at.is_(None),
        models.IndexValue.status.in_(FIXED),
        models.IndexValue.date >= day,
    )
    count, first, last = session.execute(
        select(
            func.count(models.IndexValue.id),
            func.min(models.IndexValue.date),
            func.max(models.IndexValue.date),
        ).where(*current)
    ).one()
    if not count:
        return None
    codes = session.scalars(
        select(models.IndexDefinition.code)
        .join(models.IndexValue, models.IndexValue.index_id == models.IndexDefinition.id)
        .where(*current)
        .distinct()
        .order_by(models.IndexDefinition.code)
    )
    return PublishedFrom(count, tuple(codes), first, last)


def record_version(
    session: Session,
    version: Version,
    now: dt.datetime,
    *,
    state: str = IN_FORCE,
    adopted_by: str | None = None,
    reason: str | None = None,
    forced: bool = False,
) -> MethodologyVersion:
    methodology = version.methodology
    row = session.get(MethodologyVersion, methodology.version) or MethodologyVersion(
        version=methodology.version
    )
    row.effective_from, row.sha256 = methodology.effective_from, version.sha256
    row.document, row.source, row.state = version.document, version.source, state
    row.recorded_at, row.adopted_by, row.reason, row.forced = now, adopted_by, reason, forced
    session.add(row)
    session.flush()
    return row


def record_shipped(session: Session, now: dt.datetime | None = None) -> None:
    now = now or dt.datetime.now(dt.UTC)
    known = set(session.scalars(select(MethodologyVersion.version)))
    for code, version in registry.shipped().items():
        if code in known:
            continue
        methodology = version.methodology
        would_change = published_from(session, methodology.effective_from)
        state = HELD if would_change and methodology.change is None else IN_FORCE
        record_version(session, version, now, state=state)


def load_versions(session: Session) -> None:
    """Register this database's adopted versions and holds in this process (documents are
    read and parsed only when the database knows other versions than the process)."""
    order = (MethodologyVersion.recorded_at, MethodologyVersion.version)
    listed = session.execute(
        select(
            MethodologyVersion.version,
            MethodologyVersion.sha256,
            MethodologyVersion.source,
            MethodologyVersion.state,
        ).order_by(*order)
    ).all()
    adopted = [(v, sha) for v, sha, source, _ in listed if source == "adopted"]
    held = frozenset(v for v, _, _, state in listed if state == HELD)
    if registry.knows(adopted) and registry.held() == held:
        return
    registry.forget_adopted()
    for version, document in session.execute(
        select(MethodologyVersion.version, MethodologyVersion.document)
        .where(MethodologyVersion.source == "adopted")
        .order_by(*order)
    ):
        registry.register(Version.of(document, "adopted", f"version {version}"))
    registry.hold(set(held))


def hold_conflicting_shipped(session: Session, catalogue: Catalogue) -> None:
    """Hold each shipped version in force today whose reference data (an index's base,
    a commodity's base-date weight) would contradict what published values rest on, as a
    deployment that runs its own version finds when a release ships one for the standard
    catalogue: the deployment goes on under the version before it, and
    ``bcpi methodology list`` shows the shipped one held until an operator adopts it."""
    while True:
        current = registry.in_force()
        row = session.get(MethodologyVersion, current.version)
        if row is None or row.source != "shipped" or row.state != IN_FORCE or current.change:
            return
        try:
            check_catalogue(session, catalogue, current)
        except ReferenceDataConflict as conflict:
            log.warning(
                "methodology %s held: %s; adopt it with `bcpi methodology adopt` once the "
                "reference data agree",
                current.version,
                conflict,
            )
            row.state = HELD
            session.flush()
            load_versions(session)
        else:
            return


def record_own(session: Session, own: Methodology, now: dt.datetime | None = None) -> None:
    """Record a deployment's own version, handed over at start."""
    version = Version.of(own.model_dump_json(), "adopted", f"version {own.version}")
    record_version(
        session, version, now or dt.datetime.now(dt.UTC), adopted_by="deployment", reason="own"
    )

"""Vintages and notices: what every published number carries, correction notices, and
the counter of publishing transactions that readers key on.

Published numbers (assessments, index values) are vintages: a recomputation that changes
a value inserts a new row and stamps the old one's ``superseded_at``; nothing is
overwritten, so what was known at any instant can be answered later."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Date, Float, ForeignKey, Index, LargeBinary, String, false
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, BigId, utcnow

PROVISIONAL, FINAL, RESTATED, WITHDRAWN = "provisional", "final", "restated", "withdrawn"
FIXED = (FINAL, RESTATED)
"""Statuses of a value that stands (a withdrawn vintage says the date has no value)."""


class Vintage:
    """Columns shared by every published number.

    ``status``: ``provisional`` (intraday), ``final`` (the fixing), ``restated`` (a final
    value recomputed after its inputs changed) or ``withdrawn`` (the date is no longer a
    publication day: the vintage carries no value). ``published_at``/``superseded_at``
    bound the real-time period in which the vintage was the current one.
    """

    status: Mapped[str] = mapped_column(String(16))
    vintage: Mapped[int] = mapped_column(default=1)
    methodology_version: Mapped[str] = mapped_column(String(32))
    inputs_hash: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    superseded_at: Mapped[dt.datetime | None]
    flags: Mapped[str | None] = mapped_column(String(64))
    """Space-separated flags of the value, such as ``review`` (a move beyond the threshold)."""


REASONS = (
    "late_trade",
    "trade_cancelled",
    "trade_amended",
    "rebalance",
    "methodology_change",
    "calendar_correction",
    "operator",
)
"""Why a published value changed (a correction notice's ``reason``)."""


class Correction(Base):
    """A published notice that a fixed value was restated or withdrawn: old and new value,
    why (``reason``, one of :data:`REASONS`), what caused it (``cause``: batch and trade,
    methodology version, the operator's words) and whether an operator forced it past the
    correction window (``forced``)."""

    __tablename__ = "corrections"
    __table_args__ = (
        Index("ix_corrections_published_at", "published_at", "id"),
        Index("ix_corrections_index_id_date", "index_id", "date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    index_id: Mapped[int] = mapped_column(ForeignKey("index_definitions.id"))
    date: Mapped[dt.date] = mapped_column(Date)
    old_vintage: Mapped[int]
    new_vintage: Mapped[int]
    old_value: Mapped[float] = mapped_column(Float)
    new_value: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(1000))
    cause: Mapped[str | None] = mapped_column(String(1000))
    forced: Mapped[bool] = mapped_column(default=False, server_default=false())
    published_at: Mapped[dt.datetime]


class Alert(Base):
    """A published value whose day-on-day move exceeded the methodology's review threshold.

    ``kind`` is ``index`` or ``assessment``; ``code`` the index or commodity; the value
    (``date``, ``vintage``) carries the flag ``review``. Publication is not held back."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_raised_at", "raised_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(32))
    date: Mapped[dt.date] = mapped_column(Date)
    vintage: Mapped[int]
    value: Mapped[float] = mapped_column(Float)
    previous_date: Mapped[dt.date] = mapped_column(Date)
    previous_value: Mapped[float] = mapped_column(Float)
    move: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    methodology_version: Mapped[str] = mapped_column(String(32))
    raised_at: Mapped[dt.datetime]


class PublicationState(Base):
    """One row whose ``version`` goes up with every transaction that publishes vintages.

    Readers compare it (with the tables' highest ids) to tell whether anything they answered
    could have changed: it is what conditional requests and the live stream key on.
    """

    __tablename__ = "publication_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime | None]


class StandingSeries(Base):
    """The values standing now of one index (``kind`` ``index``) or commodity
    (``assessment``), in date order, as one Arrow IPC file: what a series answer without
    ``as_of`` reads in one row instead of one row per day.

    Kept by the transaction that publishes (:mod:`store.standing`); ``max_id`` is the
    highest id of the key's vintages it has taken in, so a reader can tell it is complete
    (equal to the table's) and falls back to the vintages themselves when it is not.
    """

    __tablename__ = "standing_series"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    max_id: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[dt.datetime]

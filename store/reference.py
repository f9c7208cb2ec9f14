"""Reference data: the catalogue mirrored into the database, exchanges and their API keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import secrets
from typing import Literal

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session

from core.catalogue import Catalogue
from core.errors import BcpiError, InvalidInput, ReferenceDataConflict, UnknownExchange
from core.methodology import Methodology
from store import models
from store.reference_guard import check_catalogue

KeyRole = Literal["exchange", "admin", "read", "auditor", "metrics"]
CREATED_ROLES = ("admin", "read", "auditor", "metrics")
"""Roles ``bcpi keys create`` issues (exchange keys come with the exchange)."""
KEY_PREFIX = "bcpi_"


def sync_catalogue(session: Session, catalogue: Catalogue, methodology: Methodology) -> None:
    """Insert or update commodities, index definitions and base-date weights. Idempotent.

    Refuses (:class:`~core.errors.ReferenceDataConflict`, before writing anything) a change
    to reference data that published values rest on; see :mod:`store.reference_guard`.
    """
    check_catalogue(session, catalogue, methodology)
    commodities = {c.code: c for c in session.scalars(select(models.Commodity))}
    for item in catalogue.commodities:
        row = commodities.get(item.code) or models.Commodity(code=item.code)
        row.name_en, row.name_zh, row.sector = item.name_en, item.name_zh, item.sector
        row.unit, row.currency, row.listed_on = item.unit, item.currency, item.listed_on
        row.spec = dict(item.spec)
        session.add(row)
        commodities[item.code] = row
    session.flush()

    indices = {i.code: i for i in session.scalars(select(models.IndexDefinition))}
    for definition in catalogue.index_definitions(methodology):
        row = indices.get(definition.code) or models.IndexDefinition(code=definition.code)
        row.kind, row.name_en, row.name_zh = definition.kind, definition.name_en, definition.name_zh
        row.unit, row.base_date, row.base_value = (
            definition.unit,
            definition.base_date,
            definition.base_value,
        )
        session.add(row)
        session.flush()
        existing = {
            c.commodity_id: c
            for c in session.scalars(
                select(models.IndexConstituent).where(
                    models.IndexConstituent.index_id == row.id,
                    models.IndexConstituent.effective_from == definition.base_date,
                )
            )
        }
        for code, weight in definition.constituents:
            commodity_id = commodities[code].id
            constituent = existing.get(commodity_id) or models.IndexConstituent(
                index_id=row.id, commodity_id=commodity_id, effective_from=definition.base_date
            )
            constituent.weight = weight
            session.add(constituent)
    session.flush()
    _write_joins(session, catalogue, methodology)


def _weights_before(session: Session, index_id: int, day: dt.date) -> dict[int, float]:
    """The weight set of an index in force on the day before ``day``."""
    effective = session.scalar(
        select(func.max(models.IndexConstituent.effective_from)).where(
            models.IndexConstituent.index_id == index_id,
            models.IndexConstituent.effective_from < day,
        )
    )
    return dict(
        session.execute(
            select(models.IndexConstituent.commodity_id, models.IndexConstituent.weight).where(
                models.IndexConstituent.index_id == index_id,
                models.IndexConstituent.effective_from == effective,
            )
        ).all()
    )


def _write_joins(session: Session, catalogue: Catalogue, methodology: Methodology) -> None:
    """The weight sets with which commodities join the composite and their sector: on
    ``joins_on`` the composite weighs each newcomer its ``weight`` and every member
    ``× (1 − their sum)``; a sector re-scales its members' new composite weights to sum to
    1. A set that published values already rest on is never rewritten."""
    days: dict[dt.date, list] = {}
    for item in catalogue.commodities:
        day = methodology.commodity(item.code).joins_on
        if day is not None:
            days.setdefault(day, []).append(item)
    if not days:
        return
    ids = {c.code: c.id for c in session.scalars(select(models.Commodity))}
    indices = {i.code: i for i in session.scalars(select(models.IndexDefinition))}
    sectors = {s.code: s.index_code for s in catalogue.sectors}
    for day, items in sorted(days.items()):
        composite = indices[catalogue.composite.code]
        before = _weights_before(session, composite.id, day)
        newcomers = {ids[i.code]: methodology.commodity(i.code).weight for i in items}
        newcomers = {c: w for c, w in newcomers.items() if c not in before}
        if not before or not newcomers:
            continue
        keep = 1 - math.fsum(newcomers.values())
        wanted = {c: w * keep for c, w in before.items()} | newcomers
        codes = ", ".join(sorted(i.code for i in items))
        _place(session, composite, day, wanted, codes)
        for sector_code in sorted({i.sector for i in items}):
            sector = indices[sectors[sector_code]]
            members = _weights_before(session, sector.id, day)
            joining = {ids[i.code] for i in items if i.sector == sector_code}
            if not members or joining <= members.keys():
                continue
            own = {c: w for c, w in wanted.items() if c in members or c in joining}
            total = math.fsum(own.values())
            _place(session, sector, day, {c: w / total for c, w in own.items()}, codes)


def _place(
    session: Session, index: models.IndexDefinition, day: dt.date, wanted: dict, code: str
) -> None:
    stored = dict(
        session.execute(
            select(models.IndexConstituent.commodity_id, models.IndexConstituent.weight).where(
                models.IndexConstituent.index_id == index.id,
                models.IndexConstituent.effective_from == day,
            )
        ).all()
    )
    if stored == wanted:
        return
    published = session.scalar(
        select(
            exists().where(models.IndexValue.index_id == index.id, models.IndexValue.date >= day)
        )
    )
    if published:
        raise ReferenceDataConflict(
            "index",
            index.code,
            "joins_on",
            None,
            day,
            commodity=code,
            because=f"values of {index.code} from {day} on are published",
        )
    session.execute(
        delete(models.IndexConstituent).where(
            models.IndexConstituent.index_id == index.id,
            models.IndexConstituent.effective_from == day,
        )
    )
    session.add_all(
        models.IndexConstituent(
            index_id=index.id, commodity_id=c, effective_from=day, weight=float(w)
        )
        for c, w in wanted.items()
    )
    session.flush()


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _issue_key(session: Session, role: KeyRole, exchange_id: int | None) -> str:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(
        models.ApiKey(key_hash=hash_key(key), prefix=key[:12], role=role, exchange_id=exchange_id)
    )
    session.flush()
    return key


def create_key(session: Session, role: KeyRole) -> str:
    """A new key of ``role`` (returned once, stored only as a hash): ``admin``, ``read``,
    ``auditor`` (reads everything, trade-level explain included; writes nothing) or
    ``metrics`` (``/metrics`` only)."""
    if role not in CREATED_ROLES:
        raise BcpiError(
            f"role must be one of {', '.join(CREATED_ROLES)}, not {role!r} "
            "(exchange keys: exchanges add/rotate-key)",
            field="role",
        )
    return _issue_key(session, role, None)


def rotate_exchange_key(
    session: Session, code: str, *, now: dt.datetime | None = None
) -> tuple[models.Exchange, str]:
    """Revoke the exchange's current keys and issue a new one (returned once)."""
    exchange = get_exchange(session, code)
    session.execute(
        update(models.ApiKey)
        .where(
            models.ApiKey.exchange_id == exchange.id,
            models.ApiKey.role == "exchange",
            models.ApiKey.revoked_at.is_(None),
        )
        .values(revoked_at=now or dt.datetime.now(dt.UTC))
    )
    return exchange, _issue_key(session, "exchange", exchange.id)


def revoke_key(session: Session, prefix: str, *, now: dt.datetime | None = None) -> int:
    """Revoke the live keys whose shown prefix is ``prefix``; how many were revoked."""
    result = session.execute(
        update(models.ApiKey)
        .where(models.ApiKey.prefix == prefix, models.ApiKey.revoked_at.is_(None))
        .values(revoked_at=now or dt.datetime.now(dt.UTC))
    )
    return result.rowcount


EXCHANGE_CODE = re.compile(r"[A-Z0-9_-]{2,16}")
EXCHANGE_CODE_RULE = "2 to 16 characters, each an ASCII capital letter A-Z, a digit 0-9, _ or -"


def check_exchange_code(code: str) -> str:
    """``code`` if it may name a new exchange (it names archive folders and appears in
    URLs and files), else :class:`InvalidInput` naming the allowed alphabet."""
    if not EXCHANGE_CODE.fullmatch(code):
        raise InvalidInput(
            "code", f"exchange code {code!r} is not allowed: use {EXCHANGE_CODE_RULE}"
        )
    return code


def add_exchange(session: Session, code: str, name: str) -> tuple[models.Exchange, str]:
    """A new exchange and its first API key (returned once, stored only as a hash)."""
    check_exchange_code(code)
    if session.scalar(select(models.Exchange).where(models.Exchange.code == code)):
        raise BcpiError(f"exchange {code!r} already exists", code=code)
    exchange = models.Exchange(code=code, name=name)
    session.add(exchange)
    session.flush()
    return exchange, _issue_key(session, "exchange", exchange.id)


def ensure_exchange(session: Session, code: str, name: str | None = None) -> models.Exchange:
    """The exchange with this code, created without a key if absent (file feeds need none)."""
    exchange = session.scalar(select(models.Exchange).where(models.Exchange.code == code))
    if exchange is None:
        exchange = models.Exchange(code=code, name=name or code)
        session.add(exchange)
        session.flush()
    return exchange


def get_exchange(session: Session, code: str) -> models.Exchange:
    exchange = session.scalar(select(models.Exchange).where(models.Exchange.code == code))
    if exchange is None:
        raise UnknownExchange(code)
    return exchange

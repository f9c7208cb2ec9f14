"""Shared set-up of the fuzz, schema and abuse tests: a database with published history,
trades of two exchanges, keys of every role (live and revoked), and the run size.

``BCPI_FULL=1`` selects the full runs (the figures stated in the README); without it the
tests run their short versions, sized for CI.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import Engine

from api.app import create_app
from cli.demo import run_pipeline
from core.calendar import Calendar
from core.catalogue import Catalogue
from core.methodology import in_force
from core.settings import Settings
from store.db import session_scope
from store.reference import add_exchange, create_key, revoke_key, rotate_exchange_key

FULL = os.environ.get("BCPI_FULL") == "1"
SEED_DAYS = 8
EXCHANGE_A, EXCHANGE_B = "FZA", "FZB"
# Trades exchange A owns before a test starts (its key may read, amend and cancel them).
OWN_TRADES = ("A-1", "A-2", "A-3")


def run_size(short: int, full: int) -> int:
    """``full`` in the full run, else ``short`` (``BCPI_FUZZ_SCALE`` multiplies it)."""
    scale = float(os.environ.get("BCPI_FUZZ_SCALE", "1"))
    return max(1, round((full if FULL else short) * scale))


@dataclass(frozen=True)
class Keys:
    exchange: str  # exchange A
    other_exchange: str  # exchange B
    admin: str
    read: str
    revoked_exchange: str
    revoked_admin: str
    revoked_read: str

    def all(self) -> dict[str, str]:
        return dict(self.__dict__)


def issue_keys(engine: Engine) -> Keys:
    """Exchanges A and B with live keys, an admin and a read key, and one revoked key of
    each role (an exchange key revoked by rotation, the others by prefix)."""
    with session_scope(engine) as session:
        _, revoked_exchange = add_exchange(session, EXCHANGE_A, "Fuzz exchange A")
        _, exchange = rotate_exchange_key(session, EXCHANGE_A)
        _, other = add_exchange(session, EXCHANGE_B, "Fuzz exchange B")
        admin, read = create_key(session, "admin"), create_key(session, "read")
        revoked_admin, revoked_read = create_key(session, "admin"), create_key(session, "read")
    with session_scope(engine) as session:
        for key in (revoked_admin, revoked_read):
            assert revoke_key(session, key[:12]) == 1
    return Keys(exchange, other, admin, read, revoked_exchange, revoked_admin, revoked_read)


def seed_history(engine: Engine, catalogue: Catalogue, feed_dir: Path) -> None:
    """Synthetic feeds of three exchanges over ``SEED_DAYS`` trading days, ingested and
    computed: published assessments and index values to serve. From the base date
    (2025-01-02) they end on 2025-01-13, before the Spring Festival: every one is a
    publication day of the mainland calendar."""
    run_pipeline(engine, catalogue, feed_dir, days=SEED_DAYS, calendar=Calendar(in_force()))


def settings_for(database_url: str, tmp_path: Path, **overrides) -> Settings:
    """Settings of a test server: no read rate limit unless asked, and a fixing deadline
    so far off that ``/readyz`` answers 200 for a history that ends in the past."""
    values = {
        "database_url": database_url,
        "archive_dir": tmp_path / "archive",
        "read_rate_limit": 0,
        "fixing_overdue_minutes": 60 * 24 * 365 * 20,
        **overrides,
    }
    return Settings(**values)


def app_for(database_url: str, tmp_path: Path, **overrides) -> FastAPI:
    return create_app(settings_for(database_url, tmp_path, **overrides), migrate=False)


def own_trade_rows() -> list[dict[str, str]]:
    """Valid rebar trades of exchange A, one day after the seeded history."""
    at = dt.datetime(2025, 1, 14, 10, tzinfo=dt.timezone(dt.timedelta(hours=8))).isoformat()
    return [
        {
            "trade_id": trade_id,
            "commodity": "REBAR",
            "traded_at": at,
            "price": str(3300 + i),
            "quantity": "50",
            "currency": "CNY",
            "unit": "t",
        }
        for i, trade_id in enumerate(OWN_TRADES)
    ]

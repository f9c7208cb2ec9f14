"""A small world for calendar tests: feeds that trade every calendar day, a catalogue whose
base date is their first day, databases fed with them, and what those databases published."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
from sqlalchemy import select

from cli.synthetic import EXCHANGES, MARKETS
from core.catalogue import Catalogue, parse_catalogue
from core.settings import Settings
from ingest.files import ingest_file
from store import models
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from store.reference import ensure_exchange

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the feeds' own stamps, as the exchanges send them
ROOT = Path(__file__).resolve().parent.parent


def feed(exchange: str, seed: int, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Two trades per commodity and calendar day, the second after the 15:00 cut-off."""
    rng = np.random.default_rng(seed)
    days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
    rows = []
    for code, market in MARKETS.items():
        mids = market.level * np.exp(np.cumsum(rng.normal(0.0, market.daily_vol, len(days))))
        for day, mid in zip(days, mids, strict=True):
            for minutes in (int(rng.integers(0, 360)), int(rng.integers(361, 480))):
                at = dt.datetime.combine(day, dt.time(9), SHANGHAI) + dt.timedelta(minutes=minutes)
                lots = int(rng.integers(market.max_lots // 2, market.max_lots + 1))
                rows.append(
                    {
                        "trade_id": f"{exchange}-{code}-{day}-{minutes}",
                        "commodity": code,
                        "traded_at": at.isoformat(),
                        "price": str(round(mid * float(np.exp(rng.normal(0, 0.004))), 2)),
                        "quantity": str(market.lot * lots),
                        "currency": market.currency,
                        "unit": market.unit,
                        "fe_pct": "62.0" if code == "IRONORE" else None,
                        "moisture_pct": "8.0" if code == "IRONORE" else None,
                        "grade": "3128B" if code == "COTTON" else None,
                    }
                )
    return pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String))


@dataclass(frozen=True)
class World:
    catalogue: Catalogue
    catalogue_path: Path
    feeds: dict[str, Path]


def world(root: Path, start: dt.date, end: dt.date) -> World:
    """Feeds on disk from ``start`` to ``end``, and a copy of the catalogue; the indices
    start on the first day all their constituents are assessed."""
    text = (ROOT / "core" / "catalogue.toml").read_text(encoding="utf-8")
    catalogue_path = root / "catalogue.toml"
    catalogue_path.write_text(text, encoding="utf-8")
    feeds = {}
    for n, exchange in enumerate(EXCHANGES):
        feeds[exchange] = root / f"{exchange}.csv"
        feed(exchange, 100 + n, start, end).write_csv(feeds[exchange])
    return World(parse_catalogue(text), catalogue_path, feeds)


def fed(url: str, root: Path, world: World) -> Settings:
    """A database at ``url`` with every feed ingested (archived under ``root``)."""
    settings = Settings(
        database_url=url, archive_dir=root / "archive", catalogue_path=world.catalogue_path
    )
    engine = make_engine(url)
    prepare_database(engine, world.catalogue)
    for exchange, path in world.feeds.items():
        with session_scope(engine) as session:
            ensure_exchange(session, exchange, EXCHANGES[exchange])
        result = ingest_file(engine, world.catalogue, path, exchange, settings=settings)
        assert result.rejected == 0, result.rejections[:3]
    engine.dispose()
    return settings


def published(url: str) -> tuple[dict, dict]:
    """Current fixed values: {(index, date): value}, {(commodity, date): price}."""
    engine = make_engine(url)
    with session_scope(engine) as session:
        values = {
            (code, v.date): v.value
            for v, code in session.execute(
                select(models.IndexValue, models.IndexDefinition.code)
                .join(models.IndexDefinition)
                .where(
                    models.IndexValue.superseded_at.is_(None),
                    models.IndexValue.status.in_(models.FIXED),
                )
            )
        }
        prices = {
            (code, a.date): a.price
            for a, code in session.execute(
                select(models.Assessment, models.Commodity.code)
                .join(models.Commodity)
                .where(
                    models.Assessment.superseded_at.is_(None),
                    models.Assessment.status.in_(models.FIXED),
                )
            )
        }
    engine.dispose()
    return values, prices

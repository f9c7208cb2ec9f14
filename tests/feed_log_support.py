"""What the feed log's tests share: the JetStream server (skipped with the reason when it is
unreachable, a failure instead when ``BCPI_REQUIRE_NATS=1``), a stream of each test's own
(deleted afterwards), settings that point at it, an exchange with a key, trades to push,
and a consumer run in this process until the log is empty."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import nats
import pytest
from nats.js.errors import NotFoundError
from sqlalchemy import Engine, func, select

from core.catalogue import Catalogue
from core.settings import Settings
from ingest.consumer import Consumer, ConsumeReport
from store import models
from store.db import session_factory, session_scope
from store.reference import add_exchange
from tests.support_api import settings_for

NATS_URL = os.environ.get("BCPI_TEST_NATS_URL", "nats://127.0.0.1:4222")
REQUIRE_NATS = os.environ.get("BCPI_REQUIRE_NATS") == "1"
EXCHANGE = "FLX"
BEIJING = dt.timezone(dt.timedelta(hours=8))
DAY = dt.date(2025, 1, 14)


def _nats_unreachable_reason() -> str | None:
    where = urlparse(NATS_URL)
    try:
        with socket.create_connection((where.hostname, where.port or 4222), timeout=3):
            return None
    except OSError as exc:
        return f"NATS unreachable at {NATS_URL}: {exc.__class__.__name__}: {exc}"


@pytest.fixture
def stream() -> Iterator[str]:
    """A JetStream stream name of this test's own; the stream is deleted afterwards."""
    reason = _nats_unreachable_reason()
    if reason:
        if REQUIRE_NATS:
            pytest.fail(f"BCPI_REQUIRE_NATS=1 but {reason}")
        pytest.skip(reason)
    name = f"BCPI_TEST_{uuid.uuid4().hex[:12].upper()}"
    yield name
    asyncio.run(delete_stream(name))


async def delete_stream(name: str) -> None:
    nc = await nats.connect(NATS_URL)
    try:
        await nc.jetstream().delete_stream(name)
    except NotFoundError:
        pass
    finally:
        await nc.close()


async def stream_counts(name: str) -> dict[str, int]:
    """Messages the stream holds now, by subject (JetStream's own count; none when the
    stream was never created)."""
    nc = await nats.connect(NATS_URL)
    try:
        info = await nc.jetstream().stream_info(name, subjects_filter=">")
        return dict(info.state.subjects or {})
    except NotFoundError:
        return {}
    finally:
        await nc.close()


def log_settings(database_url: str, tmp_path: Path, stream: str, **overrides) -> Settings:
    values = {
        "feed_log_url": NATS_URL,
        "feed_log_stream": stream,
        "feed_log_ack_wait_seconds": 2.0,
        **overrides,
    }
    return settings_for(database_url, tmp_path, **values)


def free_port_url() -> str:
    """A nats:// URL where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"nats://127.0.0.1:{probe.getsockname()[1]}"


def exchange_key(engine: Engine, code: str = EXCHANGE) -> str:
    with session_scope(engine) as session:
        return add_exchange(session, code, f"Feed-log exchange {code}")[1]


def trade(trade_id: str, minute: int = 0, price: str = "3300", **extra) -> dict[str, str]:
    at = dt.datetime.combine(DAY, dt.time(10), BEIJING) + dt.timedelta(minutes=minute)
    return {
        "trade_id": trade_id,
        "commodity": "REBAR",
        "traded_at": at.isoformat(),
        "price": price,
        "quantity": "50",
        "currency": "CNY",
        "unit": "t",
        **extra,
    }


def drain(
    settings: Settings,
    engine: Engine,
    catalogue: Catalogue,
    *,
    until_idle: float = 1.5,
    stop: asyncio.Event | None = None,
    **options,
) -> ConsumeReport:
    """A consumer in this process, until the log has been quiet for ``until_idle`` s."""
    consumer = Consumer(settings, session_factory(engine), catalogue, **options)
    return asyncio.run(consumer.run(stop or asyncio.Event(), until_idle=until_idle))


def stored_trade_ids(engine: Engine) -> list[str]:
    """Every stored trade's id, once per row (a trade stored twice would appear twice)."""
    with session_scope(engine) as session:
        return list(session.scalars(select(models.Trade.trade_id)))


def statuses(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(models.QueuedBatch.status, func.count()).group_by(models.QueuedBatch.status)
        )
        return dict(rows.all())

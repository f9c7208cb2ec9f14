"""``bcpi consume``: store the batches queued on the feed log (see :mod:`ingest.consumer`)."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from cli.common import DatabaseUrl, fail, prepared, reports_errors, say


@reports_errors
def consume(
    database_url: DatabaseUrl = None,
    until_idle: Annotated[
        float | None,
        typer.Option(min=0.1, help="Stop once no batch has come for this many seconds."),
    ] = None,
) -> None:
    """Take batches off the feed log (BCPI_FEED_LOG_URL) and store them, one transaction
    each; several consumers share the work. SIGTERM or SIGINT: finish the batch in hand,
    then stop."""
    from store.db import session_factory

    ctx = prepared(database_url, retry=True)
    if not ctx.settings.feed_log_url:
        raise fail("BCPI_FEED_LOG_URL is not set: there is no feed log to consume")
    from ingest.consumer import Consumer
    from ingest.feed_log import shown

    consumer = Consumer(ctx.settings, session_factory(ctx.engine), ctx.catalogue)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, stop.set)
        await consumer.run(stop, until_idle=until_idle)

    say(f"consuming stream {ctx.settings.feed_log_stream} at {shown(ctx.settings.feed_log_url)}")
    asyncio.run(run())
    report = consumer.report
    say(
        f"stopped: {report.stored} batches stored, {report.dead} refused (dead),"
        f" {report.skipped} already settled, {report.retried} retried"
    )

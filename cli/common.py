"""What every command starts from: the database option, the settings, the prepared
database, and one decorator that turns a domain error into a message and an exit code."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, ParamSpec, TypeVar

import typer
from sqlalchemy import Engine

from core.calendar import Calendar
from core.catalogue import Catalogue, load_catalogue
from core.errors import BcpiError
from core.settings import Settings, get_settings

P = ParamSpec("P")
R = TypeVar("R")
USAGE_ERROR = 2

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL; default from BCPI_DATABASE_URL."),
]


def say(message: str) -> None:
    """A message for the operator (stderr: stdout stays for what scripts capture)."""
    typer.echo(message, err=True)


def fail(message: str) -> typer.Exit:
    say(f"error: {message}")
    return typer.Exit(code=USAGE_ERROR)


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """A :class:`BcpiError` becomes ``error: <message>`` on stderr and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except BcpiError as exc:
            raise fail(exc.message) from None

    return wrapper


def settings_for(database_url: str | None) -> Settings:
    base = get_settings()
    return base.model_copy(update={"database_url": database_url}) if database_url else base


def engine_of(settings: Settings) -> Engine:
    from store.db import engine_for

    return engine_for(settings.database_url, settings.sqlite_busy_timeout_ms)


@dataclass(frozen=True)
class Context:
    """The settings, the engine, the catalogue and the calendar of a command."""

    settings: Settings
    engine: Engine
    catalogue: Catalogue

    @property
    def calendar(self) -> Calendar:
        return Calendar.from_settings(self.settings)


def prepared(database_url: str | None, *, retry: bool = False) -> Context:
    """The database migrated (once, under a lock: several replicas may start together) and
    in step with the catalogue. With ``retry``, wait for an unreachable database with
    backoff instead of failing."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    from store.bootstrap import prepare_database
    from store.migrate import migration_lock

    settings = settings_for(database_url)
    engine = engine_of(settings)
    catalogue = load_catalogue(settings.catalogue_path)
    delay = 1.0
    while True:
        try:
            with migration_lock(settings.database_url, settings.leader_database_url):
                prepare_database(engine, catalogue, calendar_file=settings.calendar_file)
            return Context(settings, engine, catalogue)
        except (OperationalError, InterfaceError, OSError) as exc:
            if not retry:
                raise
            logging.getLogger("bcpi").warning(
                "database unreachable at start (%s); retrying in %.0fs", exc, delay
            )
            time.sleep(delay)
            delay = min(60.0, delay * 2)

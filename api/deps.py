"""Request dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from core.calendar import Calendar
from core.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_calendar(request: Request) -> Calendar:
    return request.app.state.calendar


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def get_read_session(request: Request) -> Iterator[Session]:
    """A session on the read engine: one snapshot, no write lock (see :mod:`store.db`)."""
    with request.app.state.read_sessions() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
CalendarDep = Annotated[Calendar, Depends(get_calendar)]
SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]

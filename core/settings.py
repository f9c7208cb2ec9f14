"""One configuration object for every process, read from ``BCPI_*`` environment variables."""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
_SESSION = re.compile(r"^\s*(\d{1,2}):(\d\d)\s*-\s*(\d{1,2}):(\d\d)\s*$")


def parse_sessions(text: str) -> tuple[tuple[dt.timedelta, dt.timedelta], ...]:
    """``"09:00-11:30,13:30-15:00"`` → ((start, end), …) as offsets from local midnight.

    Sessions must be ordered and must not overlap; ``24:00`` may end the last one.
    """
    sessions: list[tuple[dt.timedelta, dt.timedelta]] = []
    for part in text.split(","):
        match = _SESSION.match(part)
        if not match:
            raise ValueError(f"trading session {part.strip()!r} is not HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
            raise ValueError(f"trading session {part.strip()!r} names an impossible time")
        start, end = dt.timedelta(hours=h1, minutes=m1), dt.timedelta(hours=h2, minutes=m2)
        if end <= start:
            raise ValueError(f"trading session {part.strip()!r} ends before it starts")
        if sessions and start < sessions[-1][1]:
            raise ValueError(f"trading session {part.strip()!r} overlaps or precedes the previous")
        sessions.append((start, end))
    return tuple(sessions)


RETIRED = {
    "BCPI_FIXING_TIME": "the methodology's assessment.cutoff (the fixing is at the latest cut-off)",
    "BCPI_TIMEZONE": "the methodology's calendar.timezone",
    "BCPI_CORRECTION_WINDOW_DAYS": "the methodology's publication.correction_window_days",
    "BCPI_CALENDAR_EXTRA_HOLIDAYS": "holidays = [...] in the BCPI_CALENDAR_FILE override file",
    "BCPI_CALENDAR_EXTRA_WORKING_DAYS": "working_days = [...] in the BCPI_CALENDAR_FILE file",
    "BCPI_CALENDAR_MAKE_UP_DAYS_TRADE": "the methodology's calendar.rule (no make-up days)",
}
"""Settings that changed published values, and what replaced each: they are refused."""


def _retired(environment: dict[str, str | None]) -> list[str]:
    return sorted(name for name in RETIRED if name in {k.upper() for k in environment})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BCPI_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./var/bcpi.db",
        description="SQLAlchemy URL; postgresql+psycopg://… selects PostgreSQL.",
    )
    read_database_url: str | None = Field(
        default=None,
        description="A read replica for the API's read-only traffic (series, values, "
        "explanations, the event stream); default: database_url. Writes (pushes, rate-limit "
        "counters, keys) always go to database_url.",
    )
    catalogue_path: Path = PACKAGE_DIR / "catalogue.toml"
    archive_dir: Path = Path("./var/archive")
    # Exchange feeds (README, "Exchange feeds").
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="Largest trade push body (413 above)."
    )
    upload_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        allow_inf_nan=False,
        description="Longest time to receive a pushed body (408 past it).",
    )
    uploads_per_key: int = Field(
        default=4,
        ge=0,
        description="Bodies one key may be sending at once, per server process (429 above;"
        " 0 = unlimited).",
    )
    rows_per_batch: int = Field(
        default=100_000, ge=1, description="Most rows in one push (413 above); file batch size."
    )
    future_tolerance: dt.timedelta = Field(
        default=dt.timedelta(minutes=5), description="How far in the future traded_at may be."
    )
    idempotency_ttl: dt.timedelta = Field(
        default=dt.timedelta(hours=48),
        ge=dt.timedelta(hours=24),
        description="How long an Idempotency-Key's stored response is replayed.",
    )
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "info"
    require_read_key: bool = Field(
        default=False, description="Refuse /v1 reads without an API key (401)."
    )
    read_rate_limit: int = Field(
        default=600, ge=0, description="Requests per key per rate window; 0 = unlimited."
    )
    anonymous_rate_limit: int = Field(
        default=0, ge=0, description="Requests per client address per window without a key."
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses of the reverse proxies whose X-Forwarded-For "
        "and X-Forwarded-Proto are believed; from any other peer they are ignored.",
    )
    rate_limit_window_seconds: int = Field(default=60, ge=1, le=86_400)
    stream_poll_seconds: float = Field(default=1.0, gt=0, le=60, allow_inf_nan=False)
    stream_heartbeat_seconds: float = Field(default=15.0, gt=0, le=600, allow_inf_nan=False)
    response_cache_mb: int = Field(
        default=64, ge=0, description="Per-process cache of small answers by ETag; 0 = off."
    )

    # Scheduler and operations (see deploy/README.md).
    log_format: Literal["json", "text"] = "json"
    trading_hours: str = Field(
        default="09:00-15:00",
        description="Intraday sessions, local: HH:MM-HH:MM, comma-separated; 24:00 ends a day.",
    )
    intraday_interval_seconds: float | None = Field(
        default=None, gt=0, description="Default: the methodology's intraday interval."
    )
    sweep_delay_minutes: float = Field(
        default=10.0, ge=0, lt=24 * 60, description="Restatement sweep this long after the fixing."
    )
    sweep_morning_time: dt.time = Field(
        default=dt.time(8, 30), description="Second restatement sweep, the morning after."
    )
    rebalance_time: dt.time = Field(
        default=dt.time(8, 0),
        description="Local time of the rebalance jobs, on the first trading day from the "
        "methodology's announcement and effective dates.",
    )
    scheduler_jobs: list[str] = Field(
        default_factory=list, description="Jobs this scheduler runs (default: every job)."
    )
    catchup_horizon_days: float = Field(
        default=7.0, ge=0, description="Missed fixings and sweeps this recent run on start."
    )
    intraday_catchup_seconds: float = Field(default=300.0, ge=0)
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    leader_database_url: str | None = Field(
        default=None,
        description="Direct PostgreSQL URL for the leader lock (never through PgBouncer "
        "transaction pooling); default: database_url.",
    )
    job_retry_max_seconds: float = Field(default=600.0, gt=0)
    fixing_overdue_minutes: float = Field(default=30.0, ge=0)
    four_eyes: bool = Field(
        default=False,
        description="Forced restatements and forced methodology adoptions wait for a second "
        "operator's `bcpi approve`.",
    )
    calendar_file: Path | None = Field(
        default=None,
        description="The operator's calendar override file (dated additions and removals).",
    )
    # The feed log (README, "Feed log"): pushes queued on NATS JetStream for `bcpi consume`.
    feed_log_url: str | None = Field(
        default=None,
        description="nats://host:port of a JetStream server, or several, comma-separated "
        "(every server of a cluster, each with its credentials: nats://user:password@host:4222): "
        "POST /v1/trades answers 202 once the batch is in the stream and `bcpi consume` stores "
        "it; unset: stored before the answer.",
    )
    feed_log_stream: str = Field(
        default="BCPI_TRADES",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="The JetStream stream; its subjects are bcpi.<stream>.trades.<exchange> "
        "and bcpi.<stream>.dead, so deployments sharing a server never mix.",
    )
    feed_log_replicas: int = Field(
        default=1, ge=1, le=5, description="Copies of the stream kept in a NATS cluster."
    )
    feed_log_ack_wait_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="A batch a consumer took and neither stored nor refused within this time "
        "(the consumer died) goes to another consumer.",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_retired_settings(cls, data: object) -> object:
        from dotenv import dotenv_values

        found = _retired(dict(os.environ)) + _retired(dotenv_values(".env"))
        if found:
            replaced = "; ".join(f"{name}: set {RETIRED[name]} instead" for name in found)
            raise ValueError(
                f"settings that change published values are no longer read: {replaced}"
            )
        return data

    @field_validator("trading_hours")
    @classmethod
    def _valid_sessions(cls, value: str) -> str:
        parse_sessions(value)
        return value

    @property
    def sessions(self) -> tuple[tuple[dt.timedelta, dt.timedelta], ...]:
        return parse_sessions(self.trading_hours)


@functools.cache
def get_settings() -> Settings:
    return Settings()

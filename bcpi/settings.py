"""One configuration object for every process, read from ``BCPI_*`` environment variables."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BCPI_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./var/bcpi.db",
        description="SQLAlchemy URL; postgresql+psycopg://… selects PostgreSQL.",
    )
    catalogue_path: Path = PACKAGE_DIR / "catalogue.toml"
    archive_dir: Path = Path("./var/archive")
    # Exchange feeds (README, "Exchange feeds").
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="Largest trade push body (413 above)."
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
    timezone: str = "Asia/Shanghai"
    fixing_time: dt.time = Field(
        default=dt.time(15, 0), description="Daily fixing, local time in `timezone`."
    )
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "info"
    correction_window_days: int = Field(
        default=5, ge=1, description="Trading days a restatement sweep may still correct."
    )
    require_read_key: bool = Field(
        default=False, description="Refuse /v1 reads without an API key (401)."
    )
    read_rate_limit: int = Field(
        default=600, ge=0, description="Requests per key per rate window; 0 = unlimited."
    )
    anonymous_rate_limit: int = Field(
        default=0, ge=0, description="Requests per client address per window without a key."
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
    calendar_file: Path | None = None
    calendar_extra_holidays: list[dt.date] = Field(default_factory=list)
    calendar_extra_working_days: list[dt.date] = Field(default_factory=list)
    calendar_make_up_days_trade: bool = Field(
        default=True, description="Weekend make-up working days (调休) are trading days."
    )

    # Test-only fault injection for the crash harness (reliability/faults.py). Inert unless
    # set; never set them in production.
    fault_point: Literal["mid_batch", "after_commit", "during_fixing"] | None = Field(
        default=None, description="TEST ONLY: SIGKILL this process at this point."
    )
    fault_hit: int = Field(
        default=1, ge=1, description="TEST ONLY: the n-th time the fault point is reached."
    )
    fault_arm_file: Path | None = Field(
        default=None, description="TEST ONLY: the fault point counts only while this file exists."
    )
    fault_ack_before_commit: bool = Field(
        default=False,
        description="TEST ONLY: answer a push before committing it, then die (loses trades).",
    )

    @field_validator("trading_hours")
    @classmethod
    def _valid_sessions(cls, value: str) -> str:
        from bcpi.calendar import parse_sessions

        parse_sessions(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@functools.cache
def get_settings() -> Settings:
    return Settings()

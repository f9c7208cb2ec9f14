"""Structured logs: one JSON object per line on stderr (or plain text for a terminal).

Every record carries ``ts`` (UTC, ISO-8601), ``level``, ``logger``, ``message``, ``pid``,
the fields passed as ``extra={...}``, and ``exception`` when there is one. The same
configuration is handed to uvicorn, so its workers log the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.config
import re
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
    "taskName",
}


# An API key, and the value of a query parameter that may carry one: never written to a log
# (a client may put its key in the URL, which the access log records).
_SECRETS = (
    (re.compile(r"(?i)([?&](?:api_?key|key|token|access_token)=)[^&\s\"']*"), r"\1[redacted]"),
    (re.compile(r"bcpi_[A-Za-z0-9_-]{20,}"), "bcpi_[redacted]"),
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Takes API keys out of every record's message before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def logging_config(level: str = "info", fmt: str = "json") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dictionary (also uvicorn's ``log_config``)."""
    level = level.upper()
    formatter = (
        {"()": "core.logging.JsonFormatter"}
        if fmt == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"bcpi": formatter},
        "filters": {"secrets": {"()": "core.logging.RedactSecrets"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "bcpi",
                "filters": ["secrets"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level, "propagate": True},
            "alembic": {"level": "WARNING"},
            "apscheduler": {"level": "ERROR"},  # a run longer than a slot: caught up anyway
        },
    }


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    logging.config.dictConfig(logging_config(level, fmt))

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
from urllib.parse import unquote_plus

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
    "taskName",
}


# An API key, and the value of a query parameter that may carry one: never written to a log
# (a client may put its key in the URL, which the access log records). A parameter's name
# may come percent-encoded (``api%5Fkey``); its value is dropped whatever its encoding.
_SECRET_NAMES = {"apikey", "api_key", "key", "token", "access_token"}
_PARAMETER = re.compile(r"([?&;])((?:[A-Za-z0-9._~-]|%[0-9A-Fa-f]{2}|\+)+)=([^&;\s\"'#]*)")
_KEY = (re.compile(r"bcpi(?:_|%5[Ff])[A-Za-z0-9_%-]{20,}"), "bcpi_[redacted]")


def _parameter(match: re.Match) -> str:
    if unquote_plus(match.group(2)).strip().lower() in _SECRET_NAMES:
        return f"{match.group(1)}{match.group(2)}=[redacted]"
    return match.group(0)


def redact(text: str) -> str:
    text = _PARAMETER.sub(_parameter, text)
    return _KEY[0].sub(_KEY[1], text)


def _redacted(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactSecrets(logging.Filter):
    """Takes API keys out of every record's message and arguments before any handler
    writes it; arguments keep their places (uvicorn's access formatter reads them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {name: _redacted(arg) for name, arg in record.args.items()}
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD_FIELDS and isinstance(value, str):
                setattr(record, name, redact(value))
        return True


_STANDARD_FIELDS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) - {"msg"}


def redact_loggers(*names: str) -> None:
    """Redact at these loggers themselves, whatever handlers their records reach."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


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
            "uvicorn.access": {
                "handlers": [],
                "level": level,
                "propagate": True,
                "filters": ["secrets"],
            },
            "alembic": {"level": "WARNING"},
            "apscheduler": {"level": "ERROR"},  # a run longer than a slot: caught up anyway
        },
    }


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    logging.config.dictConfig(logging_config(level, fmt))

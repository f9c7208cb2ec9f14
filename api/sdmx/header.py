"""The header every SDMX-ML message starts with."""

from __future__ import annotations

import datetime as dt
import uuid

from api.sdmx import AGENCY
from api.sdmx.xml import element


def prepared() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def message_id() -> str:
    return "IREF" + uuid.uuid4().hex


def header(*structure: str) -> str:
    """``structure``: the ``mes:Structure`` elements of a data message."""
    return element(
        "mes:Header",
        None,
        element("mes:ID", None, text=message_id()),
        element("mes:Test", None, text="false"),
        element("mes:Prepared", None, text=prepared()),
        element("mes:Sender", {"id": AGENCY}),
        *structure,
    )

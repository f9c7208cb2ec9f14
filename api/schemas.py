"""Response models (they also document the OpenAPI schema)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel


class IndexInfo(BaseModel):
    code: str
    kind: Literal["composite", "sector", "commodity"]
    name_en: str
    name_zh: str
    unit: str
    base_date: dt.date
    base_value: float


class SeriesPoint(BaseModel):
    date: dt.date
    value: float
    status: str


class Series(BaseModel):
    code: str
    points: list[SeriesPoint]


class Health(BaseModel):
    status: Literal["ok"]

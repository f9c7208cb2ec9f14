"""What a replay found: each published value compared with its replayed twin."""

from __future__ import annotations

import datetime as dt
import math
import struct
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Difference:
    """``what``: ``assessment``, ``index``, ``batch`` or ``journal``."""

    what: str
    code: str
    date: dt.date | None
    published_at: dt.datetime | None
    field: str
    published: Any
    replayed: Any

    def __str__(self) -> str:
        when = f" {self.date}" if self.date else ""
        at = f" (published {self.published_at.isoformat()})" if self.published_at else ""
        return (
            f"{self.what} {self.code}{when}{at}: {self.field}: published {self.published!r},"
            f" replayed {self.replayed!r}"
        )


@dataclass
class ReplayReport:
    dates: list[dt.date] = field(default_factory=list)
    values: int = 0
    identical: int = 0
    batches: int = 0
    computations: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.values > 0 and self.identical == self.values and not self.differences


def same(a: Any, b: Any) -> bool:
    """Equal, floats bit for bit (``-0.0`` is not ``0.0``; a NaN equals the same NaN)."""
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    return type(a) is type(b) and a == b


def shown(value: Any) -> Any:
    return float.hex(value) if isinstance(value, float) and math.isfinite(value) else value

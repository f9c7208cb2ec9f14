"""Where tests may inject faults into a running process; inert in production.

Product code names its fault points: ``mid_batch`` (a batch's trades inserted, not yet
committed), ``before_commit`` (a push's answer ready, not yet committed; ``answer=``),
``after_commit`` (a push committed, not yet answered), ``before_publish`` and
``after_publish`` (with the feed log: a push registered, not yet appended to JetStream /
appended, not yet answered) and ``during_fixing`` (assessments computed, index values
not yet). Nothing happens at a point unless ``BCPI_FAULT_PLAN``
names a plan (``module:attribute``), loaded on first use: an object with
``at(point, **context)`` and, optionally, ``install(app)`` for the HTTP application. Test
harnesses set it on the processes they start; plans live with the tests.
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import Any

PLAN_VARIABLE = "BCPI_FAULT_PLAN"


@functools.cache
def plan() -> Any:
    spec = os.environ.get(PLAN_VARIABLE)
    if not spec:
        return None
    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module), attribute or "PLAN")


def fault_point(name: str, **context: object) -> None:
    active = plan()
    if active is not None:
        active.at(name, **context)


def install(app: object) -> None:
    active = plan()
    if active is not None and hasattr(active, "install"):
        active.install(app)

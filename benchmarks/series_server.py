"""A server holding one index with ten years of daily values, with or without the
per-process answer cache: what the series and byte-range benchmarks read."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager

from core.catalogue import load_catalogue
from core.settings import Settings
from store.bootstrap import prepare_database
from store.db import make_engine
from tests.publication_data import T0, level, publish_index, weekdays
from tests.publication_server import serve

TEN_YEARS = weekdays(dt.date(2015, 1, 1), 2610)
INDICES = ("BCPI", "BCPI-AGR", "BCPI-FER", "BCPI-ENV", "BCPI-CHE", "BCPI-FOR")
"""The catalogue's composite and sector indices."""


@contextmanager
def ten_year_series(tmp_path_factory, label: str, codes: tuple[str, ...] = ("BCPI",)) -> Iterator:
    """``label``: ``cached`` (64 MB of answer cache) or ``uncached``; ten years of each
    index of ``codes``."""
    url = os.environ.get("BCPI_BENCH_DATABASE_URL") or (
        f"sqlite:///{tmp_path_factory.mktemp('bench') / 'bcpi.db'}"
    )
    engine = make_engine(url)
    prepare_database(engine, load_catalogue(Settings().catalogue_path))
    for n, code in enumerate(codes):
        publish_index(engine, code, {d: level(d) * (1 + n / 10) for d in TEN_YEARS}, now=T0)
    engine.dispose()
    with serve(url, response_cache_mb="64" if label == "cached" else "0") as running:
        running.label = label
        yield running

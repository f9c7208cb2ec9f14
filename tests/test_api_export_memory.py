"""A very long CSV (and Arrow) export streams: the server's memory stays flat.

The default run exports 200 000 rows; ``BCPI_EXPORT_ROWS=10000000`` runs the
10-million-row case (README, "Serving").
"""

from __future__ import annotations

import os
import threading
import time

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from api.series import PARTITION_ROWS
from tests.publication_data import seed_intraday
from tests.publication_server import serve

ROWS = int(os.environ.get("BCPI_EXPORT_ROWS", "200000"))
GROWTH_LIMIT = 100 * 2**20
FLAT_NOISE = 24 * 2**20


def _download(server, params, sink=None) -> tuple[int, int, int, bytes]:
    """(bytes, lines, peak server RSS, last line) while streaming the answer to nowhere,
    or to the file ``sink``."""
    peak, done = [server.rss_bytes()], threading.Event()

    def sample():
        while not done.is_set():
            peak.append(server.rss_bytes())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    size = lines = 0
    tail = b""
    try:
        with httpx.stream(
            "GET", server.url + "/v1/indices/BCPI/series", params=params, timeout=600
        ) as response:
            assert response.status_code == 200
            for chunk in response.iter_raw():
                size += len(chunk)
                lines += chunk.count(b"\n")
                if sink is not None:
                    sink.write(chunk)
                tail = (tail + chunk)[-200:]
    finally:
        done.set()
        sampler.join()
    return size, lines, max(peak), tail


def test_long_csv_export_keeps_server_memory_flat(engine, database_url):
    seed_intraday(engine, "BCPI", ROWS)
    params = {"frequency": "intraday", "format": "csv"}
    with serve(database_url) as server:
        _download(server, {**params, "limit": 100_000})  # warm up: imports, pools, caches
        baseline = server.rss_bytes()
        part = max(ROWS // 10, 2 * PARTITION_ROWS)  # several partitions: the plateau
        _, part_lines, part_peak, _ = _download(server, {**params, "limit": part})
        started = time.monotonic()
        size, lines, peak, tail = _download(server, params)
        seconds = time.monotonic() - started
    print(
        f"\n{ROWS} rows, {size / 2**20:.0f} MiB of CSV in {seconds:.1f} s; server RSS "
        f"{baseline / 2**20:.0f} MiB before, peak {part_peak / 2**20:.0f} MiB for the first "
        f"{part} rows, {peak / 2**20:.0f} MiB for all (+{(peak - baseline) / 2**20:.1f} MiB)"
    )
    assert part_lines == part + 1
    assert lines == ROWS + 1
    assert tail.rstrip().split(b"\n")[-1].split(b",")[-2:] == [b"final", b""]  # no flags
    assert peak - baseline < GROWTH_LIMIT
    # Flat: all the rows take no more memory than the first few partitions (within noise).
    assert peak - part_peak < FLAT_NOISE


def test_long_binary_exports_stream_too(engine, database_url, tmp_path):
    rows = min(ROWS, 100_000)
    seed_intraday(engine, "BCPI", rows)
    with serve(database_url) as server:
        for fmt in ("arrow", "parquet"):
            params = {"frequency": "intraday", "format": fmt}
            _download(server, {**params, "limit": 1000})
            baseline = server.rss_bytes()
            path = tmp_path / f"series.{fmt}"
            with path.open("wb") as sink:
                _, _, peak, _ = _download(server, params, sink)
            # every row arrived, as the file's own reader counts them
            if fmt == "parquet":
                assert pq.read_metadata(path).num_rows == rows
            else:
                with pa.OSFile(str(path)) as source:
                    assert pa.ipc.open_stream(source).read_all().num_rows == rows
            assert peak - baseline < GROWTH_LIMIT, fmt

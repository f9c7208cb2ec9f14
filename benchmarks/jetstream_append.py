"""How fast JetStream appends a push-sized message, acknowledged one by one, on one node
and on the three-node cluster of ``deploy/nats`` (stream replicas 1 and 3): what the feed
log's append costs before the API can answer 202. Starts its own nats-servers from the
deploy files on spare ports and removes them afterwards. Run from the repository root:

    .venv/bin/python -m benchmarks.jetstream_append
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import nats
from nats.js import api

PASSWORD = "bench"
SIZE = 256 * 1024
"""A push of 10,000 trades is 216-232 KiB once deflated."""
COUNT = 300
DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "nats"


def _start(nodes: int, base: int, root: Path) -> list[subprocess.Popen]:
    routes = ",".join(f"nats://127.0.0.1:{base + 20 + n}" for n in range(nodes))
    processes = []
    for n in range(nodes):
        text = (DEPLOY / f"nats-{n + 1}.conf").read_text()
        text = re.sub(r"(?m)^(\s*store_dir:).*$", rf"\1 {root}/s{base}-{n}", text)
        if nodes == 1:
            text = re.sub(r"(?s)\ncluster \{.*\}\n", "\n", text)
        conf = root / f"n{base}-{n}.conf"
        conf.write_text(text)
        command = [shutil.which("nats-server") or "/usr/sbin/nats-server", "-c", str(conf)]
        command += ["-a", "127.0.0.1", "-p", str(base + n), "-m", str(base + 10 + n)]
        if nodes > 1:
            command += ["--cluster", f"nats://127.0.0.1:{base + 20 + n}", "--routes", routes]
        environment = {**os.environ, "BCPI_NATS_PASSWORD": PASSWORD}
        processes.append(subprocess.Popen(command, env=environment, stderr=subprocess.DEVNULL))
    return processes


async def _quiet(_error: Exception) -> None:
    """Refused connections while the servers start are expected."""


async def _appends_per_second(nodes: int, base: int) -> float:
    urls = [f"nats://bcpi:{PASSWORD}@127.0.0.1:{base + n}" for n in range(nodes)]
    for _ in range(100):
        try:
            client = await nats.connect(
                urls, connect_timeout=1, max_reconnect_attempts=0, error_cb=_quiet
            )
            stream = client.jetstream(timeout=10)
            await stream.add_stream(
                api.StreamConfig(
                    name="BENCH",
                    subjects=["bench.>"],
                    storage=api.StorageType.FILE,
                    retention=api.RetentionPolicy.WORK_QUEUE,
                    num_replicas=nodes,
                )
            )
            break
        except Exception:  # the cluster is still forming
            await asyncio.sleep(0.2)
    else:
        raise RuntimeError(f"no JetStream on {urls}")
    payload = os.urandom(SIZE)
    started = time.perf_counter()
    for n in range(COUNT):
        await stream.publish("bench.append", payload, headers={"Nats-Msg-Id": str(n)})
    seconds = time.perf_counter() - started
    await client.close()
    return COUNT / seconds


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bcpi-jetstream-"))
    try:
        for nodes, base in ((1, 15100), (3, 15200)):
            processes = _start(nodes, base, root)
            try:
                rate = asyncio.run(_appends_per_second(nodes, base))
                print(f"R{nodes}: {rate:,.0f} appends/s of {SIZE // 1024} KiB, one at a time")
            finally:
                for process in processes:
                    process.terminate()
                    process.wait()
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()

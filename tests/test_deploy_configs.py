"""The configurations of ``deploy/`` work: the NATS cluster, nginx, the settings file.

The three NATS JetStream configurations of ``deploy/nats`` are started as a cluster, as
they are but for what differs on one test machine: the store directory (the ``store_dir``
line rewritten to a temporary directory) and the ports (client, monitoring and cluster
ports given on the command line, which nats-server lets override the file). The test
checks what an operator would: the configurations are valid, the three servers elect a
JetStream meta leader, the feed log's stream created with ``BCPI_FEED_LOG_REPLICAS=3`` has
a leader and two current replicas, and a publish still succeeds with one server down (a
quorum of two), through a client that lists the three servers with their credentials, as
``BCPI_FEED_LOG_URL`` does.

``deploy/nginx.conf`` passes ``nginx -t`` (its host names and certificate paths replaced by
this machine's), and every variable of ``deploy/bcpi.env.example`` is a setting bcpi reads.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from core.settings import Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
NATS_DIR = DEPLOY / "nats"
CONFIGS = sorted(NATS_DIR.glob("nats-*.conf"))
PASSWORD = "test-password"
NATS_SERVER = shutil.which("nats-server")
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if Path(p).is_file()), None
)
needs_nats = pytest.mark.skipif(NATS_SERVER is None, reason="nats-server is not installed")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class Node:
    name: str
    client: int
    monitor: int
    process: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"nats://bcpi:{PASSWORD}@127.0.0.1:{self.client}"

    def jsz(self) -> dict:
        return httpx.get(f"http://127.0.0.1:{self.monitor}/jsz", timeout=2).json()


def _meta_leader(nodes: list[Node]) -> str | None:
    leaders = set()
    for node in nodes:
        try:
            meta = node.jsz().get("meta_cluster", {})
        except httpx.HTTPError:
            return None
        if meta.get("cluster_size") != len(nodes):
            return None
        leaders.add(meta.get("leader"))
    return leaders.pop() if len(leaders) == 1 else None


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[Node]]:
    assert len(CONFIGS) == 3
    ports = _free_ports(9)
    routes = ",".join(f"nats://127.0.0.1:{ports[6 + n]}" for n in range(3))
    env = {"BCPI_NATS_PASSWORD": PASSWORD, "PATH": "/usr/bin:/bin"}
    nodes: list[Node] = []
    try:
        for n, config in enumerate(CONFIGS):
            text = config.read_text()
            store = tmp_path / f"store-{n}"
            text, replaced = re.subn(r"(?m)^(\s*store_dir:).*$", rf"\1 {store}", text)
            assert replaced == 1
            local = tmp_path / config.name
            local.write_text(text)
            check = subprocess.run(
                [NATS_SERVER, "-t", "-c", str(local)], env=env, capture_output=True, text=True
            )
            assert check.returncode == 0, check.stderr
            log = tmp_path / f"{config.stem}.log"
            command = [
                NATS_SERVER,
                "-c",
                str(local),
                "-a",
                "127.0.0.1",
                "-p",
                str(ports[n]),
                "-m",
                str(ports[3 + n]),
                "--cluster",
                f"nats://127.0.0.1:{ports[6 + n]}",
                "--routes",
                routes,
            ]
            with log.open("w") as sink:
                process = subprocess.Popen(command, env=env, stdout=sink, stderr=sink)
            nodes.append(Node(config.stem, ports[n], ports[3 + n], process, log))
        yield nodes
    finally:
        for node in nodes:
            if node.process.poll() is None:
                node.process.terminate()
        for node in nodes:
            try:
                node.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()


def _wait_for_leader(nodes: list[Node], seconds: float = 15) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for node in nodes:
            assert node.process.poll() is None, node.log.read_text()[-2000:]
        leader = _meta_leader(nodes)
        if leader:
            return leader
        time.sleep(0.2)
    raise AssertionError("no JetStream meta leader: " + nodes[0].log.read_text()[-2000:])


@needs_nats
def test_the_three_servers_elect_a_jetstream_meta_leader(cluster: list[Node]):
    leader = _wait_for_leader(cluster)
    names = {
        httpx.get(f"http://127.0.0.1:{node.monitor}/varz").json()["server_name"] for node in cluster
    }
    assert names == {"nats-1", "nats-2", "nats-3"}
    assert leader in names
    for node in cluster:  # clients without the password are refused
        assert httpx.get(f"http://127.0.0.1:{node.monitor}/varz").json()["auth_required"]


@needs_nats
def test_the_feed_log_stream_keeps_three_replicas_and_survives_a_lost_server(
    cluster: list[Node], monkeypatch
):
    nats = pytest.importorskip("nats")
    from ingest.feed_log import stream_config

    _wait_for_leader(cluster)
    monkeypatch.setenv("BCPI_FEED_LOG_REPLICAS", "3")
    config = stream_config(Settings(feed_log_stream="DEPLOY_TEST"))
    subject = config.subjects[0].replace("*", "X").replace(">", "X")

    async def scenario() -> tuple:
        nc = await nats.connect(
            [node.url for node in cluster],
            connect_timeout=2,
            reconnect_time_wait=0.2,
            max_reconnect_attempts=-1,
        )
        try:
            js = nc.jetstream(timeout=10)
            created = await js.add_stream(config)
            before = await js.publish(subject, b"first")
            deadline = time.monotonic() + 10
            while True:  # until both replicas hold the first message
                info = await js.stream_info(config.name)
                replicas = info.cluster.replicas or []
                if len(replicas) == 2 and all(p.current for p in replicas):
                    break
                assert time.monotonic() < deadline, info.cluster
                await asyncio.sleep(0.1)
            # Stop the stream's leader: the two others still make a quorum.
            down = next(node for node in cluster if node.name == info.cluster.leader)
            down.process.terminate()
            down.process.wait(timeout=10)
            deadline = time.monotonic() + 20
            while True:
                try:
                    after = await js.publish(subject, b"second")
                    break
                except (nats.errors.TimeoutError, nats.js.errors.NoStreamResponseError):
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.2)
            later = await js.stream_info(config.name)
            return created, before, info, down, after, later
        finally:
            await nc.close()

    created, before, info, down, after, later = asyncio.run(scenario())
    assert created.config.num_replicas == 3
    assert info.cluster.leader in {"nats-1", "nats-2", "nats-3"}
    assert {peer.name for peer in info.cluster.replicas} | {info.cluster.leader} == {
        "nats-1",
        "nats-2",
        "nats-3",
    }
    assert (before.seq, after.seq) == (1, 2)
    assert later.cluster.leader not in (None, down.name)
    assert later.state.messages == 2


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed")
def test_the_nginx_example_passes_nginx_t(tmp_path: Path):
    certificate, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    made = subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=test", "-keyout", str(key), "-out", str(certificate)),
        ],
        capture_output=True,
    )
    assert made.returncode == 0, made.stderr
    text = (DEPLOY / "nginx.conf").read_text()
    text = re.sub(r"api\d\.internal", "127.0.0.1", text)
    text = re.sub(r"ssl_certificate\s+\S+;", f"ssl_certificate {certificate};", text)
    text = re.sub(r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};", text)
    text = text.replace("listen 443 ssl", f"listen {_free_ports(1)[0]} ssl")
    (tmp_path / "bcpi.conf").write_text(text)
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ access_log off; include {tmp_path}/bcpi.conf; }}\n"
    )
    checked = subprocess.run(
        [NGINX, "-t", "-c", str(main), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


def test_every_variable_of_the_example_settings_file_is_a_setting(monkeypatch):
    lines = (DEPLOY / "bcpi.env.example").read_text().splitlines()
    values = dict(line.split("=", 1) for line in lines if line.strip() and line[0] != "#")
    known = {f"BCPI_{name.upper()}" for name in Settings.model_fields}
    assert sorted(set(values) - known) == []
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.feed_log_replicas == 3
    assert settings.read_database_url != settings.database_url
    assert len(settings.feed_log_url.split(",")) == 3

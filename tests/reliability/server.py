"""The server under test: ``bcpi serve`` (uvicorn, one process) on 127.0.0.1, killed with
SIGKILL and started again; and the fixing, run by the scheduler's job in its own process.

Both subprocesses load the harness's fault plan (``BCPI_FAULT_PLAN``, see
:mod:`tests.reliability.faults`) and find the ``tests`` package through ``PYTHONPATH``,
which :func:`base_environment` sets to the repository root.

From the command line, an empty PostgreSQL database for a full run (what ``make
reliability-audit-postgresql`` uses)::

    python -m tests.reliability.server fresh-database --name NAME [--drop] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.reliability.faults import VARIABLES as FAULT_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
READY_TIMEOUT = 120.0
BCPI = [sys.executable, "-c", "from cli.main import main; main()"]
PR_SET_PDEATHSIG = 1
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the harness dies, however it dies."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def base_environment(database_url: str, archive_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in FAULT_VARIABLES}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        BCPI_FAULT_PLAN="tests.reliability.faults:PLAN",
        BCPI_DATABASE_URL=database_url,
        BCPI_ARCHIVE_DIR=str(archive_dir),
        BCPI_LOG_LEVEL="warning",
        BCPI_LOG_FORMAT="text",
    )
    return env


class Server:
    def __init__(self, database_url: str, archive_dir: Path, log_path: Path) -> None:
        self.database_url = database_url
        self.archive_dir = archive_dir
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self, faults: dict[str, str] | None = None) -> float:
        """Start and wait until ``/healthz`` answers; returns the seconds it took."""
        env = base_environment(self.database_url, self.archive_dir) | (faults or {})
        started = time.perf_counter()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*BCPI, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self.starts += 1
        deadline = started + READY_TIMEOUT
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(
                    f"the server exited with {self.process.returncode} on start; the end of "
                    f"{self.log_path}:\n{tail}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the server did not answer within {READY_TIMEOUT:.0f}s")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL (no clean-up of any kind), then reap."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def wait_dead(self, timeout: float) -> bool:
        if self.process is None:
            return True
        try:
            self.process.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


def start_fixing(
    database_url: str, archive_dir: Path, day: str, log_path: Path, faults: dict[str, str]
) -> subprocess.Popen:
    """The fixing of ``day`` (YYYY-MM-DD) through the scheduler's job and fence, in a new
    process (:mod:`tests.reliability.fixer`)."""
    env = base_environment(database_url, archive_dir) | faults
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.fixer", day],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )


def fresh_postgres_database(admin_url: str, name: str, *, create: bool = True) -> None:
    """Drop ``name`` if it exists (closing its connections) and create it empty."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        if create:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def main(argv: list[str] | None = None) -> int:
    command = argparse.ArgumentParser(
        prog="python -m tests.reliability.server",
        description="Tooling of the reliability runs.",
    )
    actions = command.add_subparsers(dest="action", required=True)
    fresh = actions.add_parser(
        "fresh-database",
        help="drop (if it exists) and create an empty PostgreSQL database for a full run",
    )
    fresh.add_argument("--name", required=True, help="the database to (re)create, empty")
    fresh.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help=f"any database of the server, to connect to (default {DEFAULT_POSTGRES_URL})",
    )
    fresh.add_argument("--drop", action="store_true", help="only drop it")
    arguments = command.parse_args(argv)
    fresh_postgres_database(arguments.postgres_url, arguments.name, create=not arguments.drop)
    print(f"database {arguments.name} " + ("dropped" if arguments.drop else "is empty and ready"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

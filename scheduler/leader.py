"""Leader election among ``bcpi scheduler`` processes, with nothing but the database's own means.

- PostgreSQL: a session-level advisory lock held on a dedicated connection (autocommit,
  TCP keepalives). The lock lives exactly as long as that server session: a leader that
  dies or loses its connection loses the lock, and a follower's next attempt takes it.
  Each heartbeat checks that the session still holds the lock and is still the same
  backend; through a transaction-mode pooler (PgBouncer) statements land on other
  backends, which the check notices: the leader then steps down and says why.
- SQLite: an exclusive ``flock`` on a file beside the database, for processes on one
  machine; the kernel releases it when the process dies.

Leadership only decides who runs jobs; ``UNIQUE(job, slot)`` still fences every
publication if two leaders ever overlap.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from pathlib import Path

from sqlalchemy.engine import make_url

from store.migrate import LOCK_CLASS

log = logging.getLogger("bcpi.scheduler.leader")

LOCK_SCHEDULER = 1


class Leadership:
    """Try to lead, check that leadership still holds, let it go."""

    description = "leadership"

    def try_acquire(self) -> bool:
        raise NotImplementedError

    def still_held(self) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError


class PostgresAdvisoryLock(Leadership):
    def __init__(self, url: str, *, heartbeat_seconds: float, holder: str) -> None:
        parsed = make_url(url).set(drivername="postgresql")
        self._conninfo = parsed.render_as_string(hide_password=False)
        self.description = (
            f"PostgreSQL advisory lock ({LOCK_CLASS}, {LOCK_SCHEDULER}) on {parsed.host}"
        )
        self._timeout = max(1, round(heartbeat_seconds * 2))
        self._holder = holder
        self._connection = None
        self._backend_pid: int | None = None

    def _connect(self):
        import psycopg

        connection = psycopg.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=self._timeout,
            keepalives=1,
            keepalives_idle=self._timeout,
            keepalives_interval=1,
            keepalives_count=3,
            tcp_user_timeout=self._timeout * 1000,
            application_name=f"bcpi-scheduler-leader {self._holder}"[:63],
        )
        connection.execute(f"SET statement_timeout = {self._timeout * 1000}")
        return connection

    def _close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
        self._connection, self._backend_pid = None, None

    def try_acquire(self) -> bool:
        try:
            if self._connection is None or self._connection.closed:
                self._connection = self._connect()
            acquired, pid = self._connection.execute(
                "SELECT pg_try_advisory_lock(%s, %s), pg_backend_pid()",
                (LOCK_CLASS, LOCK_SCHEDULER),
            ).fetchone()
        except Exception:
            self._close()
            raise
        if acquired:
            self._backend_pid = pid
        return bool(acquired)

    def still_held(self) -> bool:
        if self._connection is None or self._backend_pid is None:
            return False
        try:
            pid, held = self._connection.execute(
                "SELECT pg_backend_pid(), EXISTS (SELECT 1 FROM pg_locks WHERE "
                "locktype = 'advisory' AND pid = pg_backend_pid() AND classid = %s "
                "AND objid = %s AND objsubid = 2 AND granted)",
                (LOCK_CLASS, LOCK_SCHEDULER),
            ).fetchone()
        except Exception as exc:
            log.warning("leader lock connection failed: %s", exc, extra={"error": str(exc)})
            self._close()
            return False
        if pid != self._backend_pid:
            log.error(
                "leader lock: the connection moved from backend %s to %s; a transaction-mode "
                "pooler (PgBouncer) sits between bcpi and PostgreSQL: set "
                "BCPI_LEADER_DATABASE_URL to a direct connection",
                self._backend_pid,
                pid,
            )
            self._close()
            return False
        if not held:
            self._close()
        return bool(held)

    def release(self) -> None:
        if self._connection is not None and self._backend_pid is not None:
            with contextlib.suppress(Exception):
                self._connection.execute(
                    "SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, LOCK_SCHEDULER)
                )
        self._close()


class FileLock(Leadership):
    def __init__(self, path: Path, *, holder: str) -> None:
        self.path = path
        self.description = f"file lock {path}"
        self._holder = holder
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{self._holder}\n".encode())
        self._fd = fd
        return True

    def still_held(self) -> bool:
        if self._fd is None:
            return False
        try:
            return os.fstat(self._fd).st_ino == os.stat(self.path).st_ino
        except OSError:
            return False

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None


class ProcessLock(Leadership):
    """An in-memory database has one process: the first scheduler in it leads."""

    description = "in-process lock"
    _lock = threading.Lock()

    def __init__(self) -> None:
        self._held = False

    def try_acquire(self) -> bool:
        self._held = self._held or self._lock.acquire(blocking=False)
        return self._held

    def still_held(self) -> bool:
        return self._held

    def release(self) -> None:
        if self._held:
            self._held = False
            self._lock.release()


def leadership_for(
    database_url: str, leader_url: str | None, *, heartbeat_seconds: float, holder: str
) -> Leadership:
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        return PostgresAdvisoryLock(
            leader_url or database_url, heartbeat_seconds=heartbeat_seconds, holder=holder
        )
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return ProcessLock()
        return FileLock(Path(url.database + ".scheduler-lock"), holder=holder)
    raise ValueError(f"no leader election for {url.get_backend_name()}")

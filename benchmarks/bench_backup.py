"""``bcpi backup`` and ``bcpi restore`` of the demo's deployment, beside the plain tools.

The deployment is what ``bcpi demo`` builds (three exchanges' synthetic feeds ingested,
every index computed), on SQLite and on PostgreSQL, with its archive of raw feed files.

- ``bcpi backup`` (``store.backup.backup``): the database (SQLite's online backup API, or
  ``pg_dump --format=custom``) and the archive copied into a new directory, with a manifest
  of SHA-256 hashes. Its peer, what a user would otherwise run: SQLite's
  ``sqlite3.Connection.backup`` into a file, or ``pg_dump -Fc``, then a plain copy of the
  archive directory (``shutil.copytree``), no hashes.
- ``bcpi restore`` (``store.backup.restore``): every hash of the manifest checked, then the
  database restored into a new, empty one (a file copy, or ``pg_restore``) and the archive
  copied back. Its peer: a copy of the backed-up SQLite file, or ``pg_restore`` into a new
  database, then a plain copy of the archive.

Each test alternates bcpi and its peer for five rounds (both meet the same load of the
machine). Reported: seconds of each, best of the rounds, and the ratios bcpi / peer. Run:

    .venv/bin/pytest benchmarks/bench_backup.py --benchmark-enable -s

``BCPI_BENCH_BACKUP_DAYS`` sizes the history (default: what ``bcpi demo`` builds today, the
trading days from the base date to yesterday; 20 without ``--benchmark-enable``). The
PostgreSQL half runs against ``BCPI_TEST_POSTGRES_URL`` (default: the local server), in
databases it creates and drops, and is skipped when that server is unreachable.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from benchmarks.conftest import benchmarks_disabled
from cli.demo import demo_days, run_pipeline
from core.calendar import Calendar
from core.catalogue import load_catalogue
from core.methodology import in_force
from core.settings import Settings
from store.backup import backup, restore
from store.db import make_engine

ADMIN_URL = os.environ.get("BCPI_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
ROUNDS = 5
SECONDS: dict[tuple[str, str], list[float]] = defaultdict(list)
SIZES: dict[str, str] = {}


@dataclass
class Deployment:
    dialect: str
    url: str
    archive: Path
    root: Path
    databases: list[str] = field(default_factory=list)  # PostgreSQL databases to drop

    def scratch(self, name: str) -> Path:
        """A path of its own under the deployment's directory, not yet created."""
        return self.root / f"{name}-{uuid.uuid4().hex[:8]}"

    def new_database_url(self) -> str:
        """A new, empty database of the same kind."""
        if self.dialect == "sqlite":
            return f"sqlite:///{self.scratch('restored')}.db"
        import psycopg

        name = f"bcpi_bench_restore_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        """Remove a database made by :meth:`new_database_url`."""
        if self.dialect == "sqlite":
            Path(make_url(url).database).unlink()
            return
        import psycopg

        name = make_url(url).database
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.databases.remove(name)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _postgres_reachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:  # any failure to connect: no server for this half
        return f"PostgreSQL unreachable at {ADMIN_URL}: {exc}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def deployment(request, tmp_path_factory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp(f"backup-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'bcpi.db'}"
    else:
        reason = _postgres_reachable()
        if reason:
            pytest.skip(reason)
        import psycopg

        name = f"bcpi_bench_backup_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        url = f"{base}/{name}"
    calendar = Calendar(in_force())
    quick = "20" if benchmarks_disabled(request.config) else None
    wanted = os.environ.get("BCPI_BENCH_BACKUP_DAYS", quick)
    days = (
        int(wanted)
        if wanted
        else demo_days(calendar.methodology.family.base_date, calendar.today())
    )
    engine = make_engine(url)
    started = time.perf_counter()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # the demo archives its feed files under ./var/archive
        run_pipeline(
            engine,
            load_catalogue(Settings().catalogue_path),
            root / "feeds",
            days=days,
            calendar=calendar,
        )
    engine.dispose()
    built = time.perf_counter() - started
    made = Deployment(request.param, url, root / "var" / "archive", root)
    if request.param == "postgresql":
        made.databases.append(name)
    archive_bytes = sum(p.stat().st_size for p in made.archive.rglob("*") if p.is_file())
    SIZES[request.param] = (
        f"{days} trading days, archive {archive_bytes / 2**20:.1f} MiB, built in {built:.0f} s"
    )
    try:
        yield made
    finally:
        if made.databases:
            import psycopg

            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                for database in made.databases:
                    admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _rounds(request) -> int:
    return 1 if benchmarks_disabled(request.config) else ROUNDS


def _time(key: tuple[str, str], function, *args):
    started = time.perf_counter()
    result = function(*args)
    SECONDS[key].append(time.perf_counter() - started)
    return result


def plain_backup(made: Deployment, target: Path) -> int:
    target.mkdir()
    if made.dialect == "sqlite":
        out = target / "bcpi.db"
        source = make_url(made.url).database
        with sqlite3.connect(source) as live, sqlite3.connect(out) as copy:
            live.backup(copy)
        copy.close()
    else:
        out = target / "bcpi.pgdump"
        subprocess.run(["pg_dump", "-Fc", "-f", str(out), _libpq(made.url)], check=True)
    shutil.copytree(made.archive, target / "archive")
    return out.stat().st_size


def plain_restore(made: Deployment, source: Path, url: str, archive: Path) -> None:
    if made.dialect == "sqlite":
        shutil.copyfile(source / "bcpi.db", make_url(url).database)
    else:
        dump = str(source / "bcpi.pgdump")
        subprocess.run(["pg_restore", f"--dbname={_libpq(url)}", dump], check=True)
    shutil.copytree(source / "archive", archive)


def test_backup_beside_the_plain_tools(deployment, request):
    """Rounds alternate bcpi and its peer, so that both meet the same load of the machine."""
    made = deployment
    for _ in range(_rounds(request)):
        target = made.scratch("backup")
        report = _time((made.dialect, "bcpi backup"), backup, made.url, made.archive, target)
        assert report.files > 0 and report.database_bytes > 0
        shutil.rmtree(target)
        target = made.scratch("plain")
        assert _time((made.dialect, "plain backup"), plain_backup, made, target) > 0
        shutil.rmtree(target)
    SIZES[f"{made.dialect} database"] = f"{report.database_bytes / 2**20:.1f} MiB backed up"


def test_restore_beside_the_plain_tools(deployment, request):
    made = deployment
    ours, theirs = made.scratch("source"), made.scratch("plain-source")
    backup(made.url, made.archive, ours)
    plain_backup(made, theirs)
    for _ in range(_rounds(request)):
        url, archive = made.new_database_url(), made.scratch("archive")
        report = _time((made.dialect, "bcpi restore"), restore, ours, url, archive)
        assert report.files > 0
        made.drop(url)
        shutil.rmtree(archive)
        url, archive = made.new_database_url(), made.scratch("archive")
        _time((made.dialect, "plain restore"), plain_restore, made, theirs, url, archive)
        made.drop(url)
        shutil.rmtree(archive)


def test_ratios():
    dialects = sorted({dialect for dialect, _ in SECONDS})
    if not dialects:
        pytest.skip("run the benchmarks of this module in one session to get the ratios")
    for dialect in dialects:
        best = {what: min(times) for (d, what), times in SECONDS.items() if d == dialect}
        if len(best) < 4:
            continue
        print(f"\n{dialect}: {SIZES.get(dialect, '')}; {SIZES.get(f'{dialect} database', '')}")
        for step in ("backup", "restore"):
            ours, theirs = best[f"bcpi {step}"], best[f"plain {step}"]
            print(
                f"  {step:<7}: bcpi {ours:6.2f} s, plain {theirs:6.2f} s,"
                f" ratio bcpi / plain {ours / theirs:.2f}"
            )

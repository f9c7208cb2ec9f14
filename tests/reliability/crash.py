"""The crash harness: push trades over HTTP, SIGKILL the server, restart, retry, check.

One cycle: the server (``bcpi serve``, a real uvicorn process on 127.0.0.1) receives a
workload of batches from several client threads and is killed by SIGKILL, in turn:

- ``random``: at a random instant chosen by the harness;
- ``mid_batch``: by itself, inside a batch's transaction after its trades are inserted;
- ``after_commit``: by itself, after a batch committed and before its answer is sent;
- ``during_fixing``: the fixing of the cycle's day runs in its own process (the
  scheduler's job inside its exactly-once fence) and kills itself inside the computation,
  while the harness kills the server at a random instant.

The server is started again; every batch without an answer is sent again with the same
Idempotency-Key until it has one (a fixing is run again). Then the checks: every trade
acknowledged is stored exactly once with the values sent, no rejected trade is stored,
the database's own integrity check is clean, the archive's hash chain holds, and a killed
fixing left nothing behind and completed once on its second run.

The negative control (``BCPI_FAULT_ACK_BEFORE_COMMIT``) answers a push before committing
it and dies: the harness must report those trades as lost.

Under pytest: ``tests/test_crash_harness.py`` (a few cycles). From the command line, at the
repository root (``make reliability-crash`` runs the full set)::

    python -m tests.reliability.crash --cycles N --database sqlite|postgresql \
        [--postgres-url URL] [--seed S] [--negative-control] [--workdir DIR]

It prints the figures and exits 0 when nothing acknowledged was lost or doubled (with
``--negative-control``: when the deliberate loss was seen), 1 otherwise, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit.chain import verify_chain
from audit.replay import published_dates, replay
from core.calendar import Calendar
from core.catalogue import load_catalogue
from core.settings import Settings
from store import models
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope
from store.models import JobRun
from store.reference import add_exchange
from tests.reliability.fixer import fixing_slot
from tests.reliability.integrity import integrity_check
from tests.reliability.ledger import BatchEntry, Ledger, Outcome
from tests.reliability.report import CrashReport
from tests.reliability.server import Server, start_fixing
from tests.reliability.workload import cycle_batches

MODES = ("random", "mid_batch", "after_commit", "during_fixing")
EXCHANGE = "CRASHX"
REQUEST_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
FIXING_TIMEOUT = 180.0
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class CrashConfig:
    cycles: int
    database: str = "sqlite"  # or "postgresql"
    postgres_url: str = DEFAULT_POSTGRES_URL
    seed: int = 7
    batches: int = 10
    rows: int = 30
    clients: int = 3
    negative_control: bool = False
    workdir: Path | None = None


class Harness:
    def __init__(self, config: CrashConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.report = CrashReport(config.database, config.negative_control)
        self.ledger = Ledger()
        self.rows_of: dict[str, dict[str, str]] = {}
        self._temporary = None
        if config.workdir is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="bcpi-crash-")
            self.workdir = Path(self._temporary.name)
        else:
            self.workdir = Path(config.workdir)
            self.workdir.mkdir(parents=True, exist_ok=True)
        self.archive = self.workdir / "archive"
        self.arm_file = self.workdir / "armed"
        self.log = self.workdir / "server.log"
        self.postgres_database: str | None = None
        self.database_url = self._create_database()
        self.engine = make_engine(self.database_url)
        self.settings = Settings(database_url=self.database_url, archive_dir=self.archive)
        self.calendar = Calendar.from_settings(self.settings)
        prepare_database(self.engine, load_catalogue(self.settings.catalogue_path))
        with session_scope(self.engine) as session:
            _, self.key = add_exchange(session, EXCHANGE, "Crash-test exchange")
        self.days = self._publication_days(config.cycles // len(MODES) + 2)
        self.server = Server(self.database_url, self.archive, self.log)

    # set-up and tear-down

    def _create_database(self) -> str:
        if self.config.database == "sqlite":
            return f"sqlite:///{self.workdir / 'crash.db'}"
        import psycopg
        from psycopg import sql

        self.postgres_database = f"bcpi_crash_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.config.postgres_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.postgres_database))
            )
        base = self.config.postgres_url.rsplit("/", 1)[0]
        base = base.replace("postgresql://", "postgresql+psycopg://", 1)
        return f"{base}/{self.postgres_database}"

    def close(self, *, keep_files: bool) -> None:
        """Stop the server; drop the PostgreSQL database and remove the files unless kept
        (a failed run keeps both, for the post-mortem)."""
        self.server.stop()
        self.engine.dispose()
        if self.postgres_database is not None and not keep_files:
            import psycopg
            from psycopg import sql

            with psycopg.connect(self.config.postgres_url, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(self.postgres_database)
                    )
                )
        if self._temporary is not None and not keep_files:
            self._temporary.cleanup()

    def _publication_days(self, count: int) -> list[dt.date]:
        """The ``count`` publication days before today, latest first: each cycle's trades
        fall inside its day's assessment window, which has closed by now."""
        days = [self.calendar.previous_publication_day(self.calendar.today())]
        while len(days) < count:
            days.append(self.calendar.previous_publication_day(days[-1]))
        return days

    # the server's fault injection, per cycle

    def mode(self, cycle: int) -> str:
        return "ack_before_commit" if self.config.negative_control else MODES[cycle % len(MODES)]

    def faults(self, cycle: int) -> dict[str, str]:
        if cycle >= self.config.cycles:
            return {}
        mode = self.mode(cycle)
        armed = {"BCPI_FAULT_ARM_FILE": str(self.arm_file)}
        if mode == "ack_before_commit":
            return armed | {"BCPI_FAULT_ACK_BEFORE_COMMIT": "1"}
        if mode in ("mid_batch", "after_commit"):
            hit = self.rng.randint(1, max(1, self.config.batches // 2))
            return armed | {"BCPI_FAULT_POINT": mode, "BCPI_FAULT_HIT": str(hit)}
        return {}

    def restart(self, cycle: int) -> None:
        self.report.restart_seconds.append(self.server.start(self.faults(cycle)))
        self.report.restarts += 1

    # sending

    def send(self, client: httpx.Client, entry: BatchEntry) -> bool:
        """One attempt; False when no answer came (the server is gone)."""
        headers = {
            "Authorization": f"Bearer {self.key}",
            "Content-Type": entry.media_type,
            "Idempotency-Key": entry.key,
        }
        params = {"atomic": "true"} if entry.atomic else None
        try:
            answer = client.post(
                f"{self.server.url}/v1/trades", content=entry.body, headers=headers, params=params
            )
        except httpx.HTTPError:
            self.ledger.record(entry, None, None, False)
            return False
        if answer.status_code >= 500:
            self.report.server_errors += 1
        elif answer.status_code not in (200, 422):
            self.report.harness_problems.append(
                f"batch {entry.key}: unexpected {answer.status_code}: {answer.text[:200]}"
            )
        body = answer.json() if answer.status_code == 200 else None
        replayed = answer.headers.get("idempotent-replayed") == "true"
        self.ledger.record(entry, answer.status_code, body, replayed)
        return True

    def push(self, entries: list[BatchEntry]) -> None:
        """Several clients send the batches until they are done or the server is gone."""
        work: queue.Queue[BatchEntry] = queue.Queue()
        for entry in entries:
            work.put(entry)
        gone = threading.Event()

        def client_loop() -> None:
            with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
                while not gone.is_set():
                    try:
                        entry = work.get_nowait()
                    except queue.Empty:
                        return
                    if not self.send(client, entry):
                        gone.set()

        threads = [threading.Thread(target=client_loop) for _ in range(self.config.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def resolve(self) -> None:
        """Send every batch without an answer again (same key) until each has one."""
        with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
            for entry in self.ledger.unresolved():
                if entry.attempts:
                    self.report.retried += 1
                for _ in range(5):
                    if self.send(client, entry):
                        if entry.outcome is not Outcome.UNKNOWN:
                            break
                        continue  # a 5xx: counted; try again
                    self.report.harness_problems.append(
                        f"batch {entry.key}: no answer from a server without faults armed"
                    )
                    self.server.kill()
                    self.restart(self.config.cycles)
                if entry.replayed:
                    self.report.replayed_answers += 1

    # one cycle

    def cycle(self, number: int) -> None:
        mode = self.mode(number)
        day = self.days[number // len(MODES)]
        entries = cycle_batches(
            self.rng,
            number,
            day,
            batches=self.config.batches,
            rows=self.config.rows,
            acknowledged=list(self.ledger.acknowledged().values()),
            rows_of=self.rows_of,
        )
        for entry in entries:
            self.ledger.add(entry)
        self.report.batches += len(entries)
        self.report.trades_sent += sum(len(e.trades) for e in entries)

        fixing = None
        if mode == "during_fixing":
            fixing = start_fixing(
                self.database_url,
                self.archive,
                day.isoformat(),
                self.workdir / "fixing.log",
                {"BCPI_FAULT_POINT": "during_fixing"},
            )
        timer = None
        if mode in ("random", "during_fixing"):
            timer = threading.Timer(self.rng.uniform(0.02, 1.0), self.server.kill)
            timer.start()
        else:
            self.arm_file.touch()
        self.push(entries)
        if timer is not None:
            timer.join()
        if self.server.alive() and not self.server.wait_dead(2.0):
            self.server.kill()  # the fault was not reached: the kill lands after the workload
            self.report.kills["after the workload"] += 1
        else:
            self.report.kills[mode] += 1
        self.arm_file.unlink(missing_ok=True)
        self.report.unanswered_at_kill += sum(1 for e in entries if e.outcome is Outcome.UNKNOWN)
        if fixing is not None:
            self.killed_fixing(fixing, day)

        self.restart(number + 1)
        self.resolve()
        if fixing is not None:
            self.rerun_fixing(day)
        self.verify()
        self.report.cycles += 1

    # fixing

    def _fixing_state(self, day: dt.date) -> tuple[int, JobRun | None]:
        slot = fixing_slot(day, self.calendar)
        with Session(self.engine) as session:
            published = session.scalar(
                select(func.count())
                .select_from(models.Assessment)
                .where(models.Assessment.date == day)
            )
            run = session.scalar(select(JobRun).where(JobRun.job == "fixing", JobRun.slot == slot))
            session.expunge_all()
        return published, run

    def killed_fixing(self, process: subprocess.Popen, day: dt.date) -> None:
        try:
            code = process.wait(timeout=FIXING_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        if code != -9:
            self.report.fixing_problems.append(
                f"fixing of {day}: exited {code}, not killed at the fault point"
            )
            return
        self.report.fixings_killed += 1
        published, run = self._fixing_state(day)
        if published:
            self.report.fixing_problems.append(
                f"fixing of {day} killed mid-computation left {published} assessments"
            )
        if run is None or run.outcome != "running":
            self.report.fixing_problems.append(
                f"fixing of {day}: its run record is {run and run.outcome}, not 'running'"
            )

    def rerun_fixing(self, day: dt.date) -> None:
        process = start_fixing(
            self.database_url, self.archive, day.isoformat(), self.workdir / "fixing.log", {}
        )
        try:
            code = process.wait(timeout=FIXING_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        published, run = self._fixing_state(day)
        with Session(self.engine) as session:
            commodities = session.scalar(select(func.count()).select_from(models.Commodity))
        detail = run.detail if run is not None else None
        new = (detail or {}).get("assessments", {}).get("new")
        if code != 0 or run is None or run.outcome != "succeeded" or run.attempts != 2:
            self.report.fixing_problems.append(
                f"fixing of {day} run again: exit {code}, run record "
                f"{run and (run.outcome, run.attempts)}"
            )
        elif published != commodities or new != published:
            self.report.fixing_problems.append(
                f"fixing of {day}: {published} assessments stored, {new} reported, "
                f"{commodities} commodities"
            )
        else:
            self.report.fixings_completed += 1

    # checks

    def stored(self) -> dict[str, tuple[int, float, float]]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(
                    models.Trade.trade_id,
                    func.count(),
                    func.min(models.Trade.price_raw),
                    func.min(models.Trade.quantity_raw),
                )
                .join(models.Exchange, models.Exchange.id == models.Trade.exchange_id)
                .where(models.Exchange.code == EXCHANGE)
                .group_by(models.Trade.trade_id)
            ).all()
        return {trade_id: (count, price, quantity) for trade_id, count, price, quantity in rows}

    def verify(self) -> None:
        report = self.report
        stored = self.stored()
        acknowledged = self.ledger.acknowledged()
        rejected = self.ledger.rejected()
        report.acknowledged, report.rejected = len(acknowledged), len(rejected)
        report.lost |= set(acknowledged) - set(stored)
        report.duplicated |= {t for t, (count, _, _) in stored.items() if count != 1}
        report.phantom |= set(stored) - set(acknowledged)
        report.altered |= {
            t
            for t, sent in acknowledged.items()
            if t in stored and stored[t][1:] != (sent.price, sent.quantity)
        }
        if self.ledger.unresolved():
            report.harness_problems.append(f"{len(self.ledger.unresolved())} batches unresolved")

        integrity = integrity_check(self.database_url)
        report.integrity_checks += 1
        report.integrity_what, report.integrity_skipped = integrity.checked, integrity.skipped
        report.integrity_problems += integrity.problems
        with Session(self.engine) as session:
            chain = verify_chain(session, self.archive)
        report.chain_links = chain.links
        report.archive_files = chain.files
        report.archive_strays = (chain.partial_files, chain.unreferenced_files)
        report.chain_problems += [str(p) for p in chain.problems]

    def replay_fixings(self) -> None:
        """Replay every value the fixings published, from the archive the server wrote."""
        with Session(self.engine) as session:
            dates = published_dates(session)
        if not dates:
            return
        replayed = replay(
            self.engine,
            archive_dir=self.archive,
            catalogue=load_catalogue(self.settings.catalogue_path),
            settings=self.settings,
            dates=dates,
        )
        self.report.replayed_values = replayed.values
        self.report.replayed_identical = replayed.identical
        self.report.replay_differences = [str(d) for d in replayed.differences]

    def run(self, progress=None) -> CrashReport:
        started = time.perf_counter()
        try:
            self.restart(0)
            for number in range(self.config.cycles):
                self.cycle(number)
                if progress is not None:
                    progress(number + 1, self.report)
            self.server.stop()
            self.replay_fixings()
        finally:
            self.report.seconds = time.perf_counter() - started
        return self.report


def run_crash(config: CrashConfig, progress=None) -> CrashReport:
    harness = Harness(config)
    failed = False
    try:
        report = harness.run(progress)
        failed = not report.ok and not config.negative_control
        return report
    except Exception:
        failed = True  # kept for the post-mortem (an interruption is not kept)
        raise
    finally:
        keep = failed or config.workdir is not None
        harness.close(keep_files=keep)
        if failed:
            where = harness.postgres_database or ""
            print(f"crash harness: files kept in {harness.workdir} {where}".rstrip(), flush=True)


def crash_command(
    *,
    cycles: int,
    database: str,
    postgres_url: str,
    seed: int,
    negative_control: bool,
    workdir: Path | None,
) -> int:
    """Run, print the figures; exit 0 when nothing was lost (with ``negative_control``:
    exit 0 when the loss was seen)."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # A SIGTERM unwinds like Ctrl-C, so the server is stopped and the scratch files go.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    config = CrashConfig(
        cycles=cycles,
        database=database,
        postgres_url=postgres_url,
        seed=seed,
        negative_control=negative_control,
        workdir=workdir,
    )

    def progress(done: int, report: CrashReport) -> None:
        if done % 10 == 0 or done == cycles:
            print(
                f"  … {done}/{cycles} cycles, {report.acknowledged} trades acknowledged, "
                f"lost {len(report.lost)}, duplicated {len(report.duplicated)}",
                flush=True,
            )

    report = run_crash(config, progress)
    for line in report.lines():
        print(line)
    for problem in [
        *report.integrity_problems,
        *report.chain_problems,
        *report.fixing_problems,
        *report.replay_differences,
        *report.harness_problems,
    ][:20]:
        print(f"  problem: {problem}")
    if report.lost:
        print(f"  lost trades, e.g. {sorted(report.lost)[:5]}")
    print(json.dumps({"database": database, "cycles": report.cycles, "ok": report.ok}))
    if negative_control:
        seen = bool(report.lost)
        print(
            "negative control: the harness "
            + ("REPORTED the lost acknowledged trades, as it must" if seen else "MISSED the loss")
        )
        return 0 if seen else 1
    return 0 if report.ok else 1


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(
        prog="python -m tests.reliability.crash",
        description="Push trades over HTTP while SIGKILLing the server at random instants and "
        "fixed points; restart, retry, and check that nothing acknowledged is lost or doubled.",
    )
    command.add_argument(
        "--cycles", type=int, default=200, help="kill-and-restart cycles (default 200)"
    )
    command.add_argument(
        "--database", choices=("sqlite", "postgresql"), default="sqlite", help="default sqlite"
    )
    command.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="server for --database postgresql; a database is created on it "
        f"(default {DEFAULT_POSTGRES_URL})",
    )
    command.add_argument(
        "--seed", type=int, default=7, help="random seed of kills and workload (default 7)"
    )
    command.add_argument(
        "--negative-control",
        action="store_true",
        help="break durability on purpose (ack before commit): the run must report loss",
    )
    command.add_argument(
        "--workdir", type=Path, default=None, help="keep the database, archive and logs here"
    )
    return command


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    if arguments.cycles < 1:
        parser().error("--cycles must be at least 1")
    return crash_command(
        cycles=arguments.cycles,
        database=arguments.database,
        postgres_url=arguments.postgres_url,
        seed=arguments.seed,
        negative_control=arguments.negative_control,
        workdir=arguments.workdir,
    )


if __name__ == "__main__":
    raise SystemExit(main())

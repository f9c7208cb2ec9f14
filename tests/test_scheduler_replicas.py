"""Three scheduler processes over one PostgreSQL: exactly one run per intraday slot, even
when the leader is killed (SIGKILL) in the middle of a run.

Each process is ``python -m tests.scheduler_support URL``: the real scheduler service
(leader election, fence, catch-up) with a witness job on the intraday slots that appends a
row per run to a table without any unique key, so a slot run twice would show twice.
Slots are 0.2 s and heartbeats 0.5 s; ``BCPI_TEST_REPLICA_SLOTS`` (default 200) sets the
length of the run (e.g. 3000 for a ten-minute soak).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from core.calendar import Calendar, CalendarOverrides
from core.methodology import in_force
from core.settings import Settings
from publication.schedule import intraday_slots
from store.bootstrap import prepare_database
from store.db import make_engine
from store.models import JobRun
from tests.scheduler_support import witness, witness_metadata, witness_rows

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
BEIJING = ZoneInfo("Asia/Shanghai")
SLOT_SECONDS = 0.2
HEARTBEAT_SECONDS = 0.5
SLOTS = int(os.environ.get("BCPI_TEST_REPLICA_SLOTS", "200"))


def _start(url: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.scheduler_support", url],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def test_three_schedulers_run_each_slot_once_through_a_leader_kill(
    postgres_url, catalogue, tmp_path
):
    engine = make_engine(postgres_url)
    prepare_database(engine, catalogue)
    witness_metadata.create_all(engine)
    today = dt.datetime.now(BEIJING).date()
    days = [today, today + dt.timedelta(days=1)]
    # Today and tomorrow are publication days, whatever the calendar says (the override file).
    calendar_file = tmp_path / "calendar.toml"
    calendar_file.write_text(f"working_days = [{', '.join(d.isoformat() for d in days)}]\n")
    stall_file = tmp_path / "stalled"
    env = {
        **os.environ,
        "BCPI_DATABASE_URL": postgres_url,
        "BCPI_TRADING_HOURS": "00:00-24:00",
        "BCPI_INTRADAY_INTERVAL_SECONDS": str(SLOT_SECONDS),
        "BCPI_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
        "BCPI_CALENDAR_FILE": str(calendar_file),
        "BCPI_TEST_JOBS": "witness",
        "BCPI_TEST_STALL_FILE": str(stall_file),
        "BCPI_TEST_STALL_AFTER": str(SLOTS // 2),
        "PYTHONPATH": str(ROOT),
    }
    logs = [tmp_path / f"scheduler{i}.log" for i in range(3)]
    processes = [_start(postgres_url, env, log) for log in logs]
    try:
        deadline = time.monotonic() + 60 + SLOTS * SLOT_SECONDS
        while not stall_file.exists():
            assert time.monotonic() < deadline, "no leader reached the middle of the run"
            assert all(p.poll() is None for p in processes), _tail(logs[0])
            time.sleep(0.02)
        victim_pid = int(stall_file.read_text().split()[0])
        victim = next(p for p in processes if p.pid == victim_pid)
        victim.send_signal(signal.SIGKILL)
        killed_at = dt.datetime.now(dt.UTC)
        victim.wait(timeout=10)

        while len(witness_rows(engine)) < SLOTS + 20:
            assert time.monotonic() < deadline, "the run did not reach its length"
            time.sleep(0.1)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = {p.pid: p.wait(timeout=30) for p in processes}

    survivors = [p for p in processes if p.pid != victim_pid]
    assert [codes[p.pid] for p in survivors] == [0, 0], [_tail(log) for log in logs]

    rows = witness_rows(engine)
    per_slot = Counter(slot for slot, _ in rows)
    assert max(per_slot.values()) == 1, [s for s, n in per_slot.items() if n > 1][:5]
    assert len(per_slot) >= SLOTS

    settings = Settings(trading_hours="00:00-24:00", intraday_interval_seconds=SLOT_SECONDS)
    calendar = Calendar(
        in_force(), CalendarOverrides(working_days=frozenset(days)), settings.sessions
    )
    expected = list(intraday_slots(settings, calendar).slots(min(per_slot), max(per_slot)))
    assert sorted(per_slot) == expected  # no slot lost, before, during or after the kill

    by_pid = Counter(pid for _, pid in rows)
    assert by_pid[victim_pid] >= SLOTS // 2 - 1  # the first leader ran the first half
    with engine.connect() as connection:
        at_kill = [
            (slot, pid, at)
            for slot, pid, at in connection.execute(
                select(witness.c.slot, witness.c.pid, witness.c.at).order_by(witness.c.at)
            )
            if at > killed_at
        ]
        stalled_slot = dt.datetime.fromisoformat(stall_file.read_text().split()[1])
        attempts = connection.scalar(
            select(JobRun.attempts).where(JobRun.job == "witness", JobRun.slot == stalled_slot)
        )
    takeover = (at_kill[0][2] - killed_at).total_seconds()
    print(f"\n{len(per_slot)} slots, {len(rows)} runs, takeover {takeover:.3f}s after SIGKILL")
    assert takeover <= 2 * HEARTBEAT_SECONDS, f"takeover took {takeover:.3f}s"
    assert {pid for _, pid, _ in at_kill} <= {p.pid for p in survivors}
    # The slot interrupted by the kill was completed once, by the new leader.
    assert per_slot[stalled_slot] == 1
    assert [pid for slot, pid in rows if slot == stalled_slot] != [victim_pid]
    assert attempts == 2
    engine.dispose()

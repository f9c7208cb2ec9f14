"""The crash harness: nothing acknowledged is lost or doubled across SIGKILLs, on SQLite
and PostgreSQL; and the harness does see loss when durability is broken on purpose.

The default run does ``BCPI_CRASH_CYCLES`` (10) cycles per database; the full run is
``make reliability`` (200 per database, through ``bcpi reliability crash``).
"""

from __future__ import annotations

import os

import pytest

from reliability import faults
from reliability.crash import MODES, CrashConfig, run_crash

CYCLES = int(os.environ.get("BCPI_CRASH_CYCLES", "10"))


def test_fault_hooks_are_inert_unless_set(monkeypatch):
    for name in ("BCPI_FAULT_POINT", "BCPI_FAULT_ACK_BEFORE_COMMIT", "BCPI_FAULT_ARM_FILE"):
        monkeypatch.delenv(name, raising=False)
    faults.armed.cache_clear()
    monkeypatch.setattr(faults, "kill_self", lambda reason: pytest.fail(f"killed: {reason}"))
    try:
        assert faults.armed() is None
        for point in ("mid_batch", "after_commit", "during_fixing"):
            faults.fault_point(point)
        faults.acknowledge_before_commit("{}")
    finally:
        faults.armed.cache_clear()


def test_a_fault_point_fires_at_its_hit_only_while_armed(monkeypatch, tmp_path):
    from bcpi import settings

    arm = tmp_path / "armed"
    monkeypatch.setenv("BCPI_FAULT_POINT", "after_commit")
    monkeypatch.setenv("BCPI_FAULT_HIT", "2")
    monkeypatch.setenv("BCPI_FAULT_ARM_FILE", str(arm))
    settings.get_settings.cache_clear()
    faults.armed.cache_clear()
    monkeypatch.setattr(faults, "_hits", 0)
    killed = []
    monkeypatch.setattr(faults, "kill_self", killed.append)
    try:
        faults.fault_point("after_commit")  # not armed: not counted
        arm.touch()
        faults.fault_point("mid_batch")  # another point
        faults.fault_point("after_commit")  # hit 1
        assert killed == []
        faults.fault_point("after_commit")  # hit 2
        assert killed == ["fault point after_commit, hit 2"]
    finally:
        settings.get_settings.cache_clear()
        faults.armed.cache_clear()


def _check(report, cycles: int) -> None:
    assert report.cycles == cycles
    assert report.ok, "\n".join(report.lines())
    assert not (report.lost or report.duplicated or report.phantom or report.altered)
    assert set(MODES) <= set(report.kills), report.kills
    assert report.acknowledged > 0 and report.rejected > 0
    assert report.unanswered_at_kill > 0 and report.retried > 0
    assert report.integrity_checks == cycles and not report.integrity_problems
    assert report.fixings_killed == report.fixings_completed >= cycles // len(MODES)
    # what the killed-then-rerun fixings published replays bit for bit from the archive
    assert report.replayed_values > 0
    assert report.replayed_identical == report.replayed_values


def test_crash_cycles_lose_nothing_on_sqlite():
    report = run_crash(CrashConfig(cycles=CYCLES, database="sqlite", batches=6, rows=20))
    print("\n".join(report.lines()))
    _check(report, CYCLES)
    assert report.integrity_what == "PRAGMA integrity_check"


@pytest.mark.postgres
def test_crash_cycles_lose_nothing_on_postgresql(postgres_admin_url):
    report = run_crash(
        CrashConfig(
            cycles=CYCLES,
            database="postgresql",
            postgres_url=postgres_admin_url,
            batches=6,
            rows=20,
        )
    )
    print("\n".join(report.lines()))
    _check(report, CYCLES)
    # amcheck is installed on the test server; where it is not, the reason is stated
    assert report.integrity_skipped is None, report.integrity_skipped
    assert report.integrity_what.startswith("amcheck")


def test_negative_control_acknowledging_before_commit_is_reported_as_loss():
    report = run_crash(
        CrashConfig(cycles=2, database="sqlite", batches=6, rows=20, negative_control=True)
    )
    print("\n".join(report.lines()))
    assert report.kills["ack_before_commit"] == 2
    assert len(report.lost) >= 2  # at least one acknowledged-but-never-committed trade a cycle
    assert not report.ok

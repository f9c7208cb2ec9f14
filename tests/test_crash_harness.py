"""The crash harness: nothing acknowledged is lost or doubled across SIGKILLs, on SQLite
and PostgreSQL; and the harness does see loss when durability is broken on purpose.

The default run does ``BCPI_CRASH_CYCLES`` (10) cycles per database; the full run is
``make reliability`` (200 per database, through ``python -m tests.reliability.crash``).
"""

from __future__ import annotations

import os

import pytest

from core import faults as hook
from tests.reliability import faults
from tests.reliability.crash import MODES, CrashConfig, run_crash

CYCLES = int(os.environ.get("BCPI_CRASH_CYCLES", "10"))


@pytest.fixture
def no_kill(monkeypatch):
    """Any SIGKILL the plan would send fails the test instead."""
    monkeypatch.setattr(faults, "kill_self", lambda reason: pytest.fail(f"killed: {reason}"))


def test_the_fault_hook_is_inert_without_a_plan(monkeypatch, no_kill):
    monkeypatch.delenv(hook.PLAN_VARIABLE, raising=False)
    hook.plan.cache_clear()
    try:
        assert hook.plan() is None
        for point in faults.POINTS:
            hook.fault_point(point)
        hook.fault_point("before_commit", answer="{}")
        hook.install(object())  # nothing to install, nothing touched
    finally:
        hook.plan.cache_clear()
    # The variable names the plan, loaded on first use (what the harness's servers do).
    monkeypatch.setenv(hook.PLAN_VARIABLE, "tests.reliability.faults:PLAN")
    try:
        assert hook.plan() is faults.PLAN
    finally:
        hook.plan.cache_clear()


def test_a_fault_plan_is_inert_unless_armed(monkeypatch, tmp_path, no_kill):
    for name in faults.VARIABLES:
        monkeypatch.delenv(name, raising=False)
    unset = faults.Plan.from_environment()
    assert unset == faults.Plan(None, 1, None, False)
    for point in faults.POINTS:
        unset.at(point)
    unset.at("before_commit", answer="{}")

    arm = tmp_path / "armed"  # never created: the plans below are never armed
    for plan in (
        *(faults.Plan(point, 1, arm) for point in faults.POINTS),
        faults.Plan(None, 1, arm, ack_before_commit=True),
    ):
        assert not plan.armed()
        for _ in range(3):
            for point in faults.POINTS:
                plan.at(point)
            plan.at("before_commit", answer="{}")

    acknowledging = faults.Plan(None, 1, arm, ack_before_commit=True)
    arm.touch()
    with pytest.raises(faults.AcknowledgedBeforeCommit) as raised:
        acknowledging.at("before_commit", answer='{"accepted": 1}')
    assert raised.value.answer == '{"accepted": 1}'


def test_a_fault_point_fires_at_its_hit_only_while_armed(monkeypatch, tmp_path):
    arm = tmp_path / "armed"
    monkeypatch.setenv("BCPI_FAULT_POINT", "after_commit")
    monkeypatch.setenv("BCPI_FAULT_HIT", "2")
    monkeypatch.setenv("BCPI_FAULT_ARM_FILE", str(arm))
    monkeypatch.delenv("BCPI_FAULT_ACK_BEFORE_COMMIT", raising=False)
    plan = faults.Plan.from_environment()
    assert plan == faults.Plan("after_commit", 2, arm, False)
    killed = []
    monkeypatch.setattr(faults, "kill_self", killed.append)
    plan.at("after_commit")  # not armed: not counted
    arm.touch()
    plan.at("mid_batch")  # another point
    plan.at("before_commit", answer="{}")  # not acknowledging before commit
    plan.at("after_commit")  # hit 1
    assert killed == []
    plan.at("after_commit")  # hit 2
    assert killed == ["fault point after_commit, hit 2"]


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

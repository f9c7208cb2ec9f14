"""The operator log: each act once, in order, with who did it; an edited entry or a changed
calendar override file does not go unnoticed."""

from __future__ import annotations

import json

from sqlalchemy import select, update
from typer.testing import CliRunner

from audit.chain import verify_chain
from cli.main import app as cli
from store import models
from store.bootstrap import prepare_database
from store.db import make_engine, session_scope


def bcpi(database_url: str, *args: str, env: dict | None = None):
    return CliRunner().invoke(cli, [*args, "--database-url", database_url], env=env)


def acts(engine) -> list[models.OperatorAct]:
    with session_scope(engine) as session:
        return list(session.scalars(select(models.OperatorAct).order_by(models.OperatorAct.seq)))


def test_key_and_exchange_acts_are_logged_with_their_operator(database_url, catalogue, tmp_path):
    engine = make_engine(database_url)
    prepare_database(engine, catalogue)
    added = bcpi(database_url, "exchanges", "add", "BJX", "--name", "Beijing X", "--operator", "li")
    assert added.exit_code == 0, added.output
    key = added.stdout.strip()
    created = bcpi(
        database_url, "keys", "create", "--role", "auditor", env={"BCPI_OPERATOR": "wang"}
    )
    assert created.exit_code == 0, created.output
    revoked = bcpi(database_url, "keys", "revoke", key[:12], "--operator", "zhao")
    assert revoked.exit_code == 0, revoked.output
    refused = bcpi(database_url, "keys", "revoke", "bcpi_nothing", "--operator", "zhao")
    assert refused.exit_code == 2

    log = acts(engine)
    assert [(a.seq, a.action, a.operator, a.via) for a in log] == [
        (1, "exchange.add", "li", "cli"),
        (2, "key.create", "wang", "cli"),
        (3, "key.revoke", "zhao", "cli"),
    ]
    assert log[0].details["key"] == key[:12] and key not in json.dumps(log[0].details)
    assert [a.previous_hash for a in log[1:]] == [a.entry_hash for a in log[:-1]]
    with session_scope(engine) as session:
        assert verify_chain(session, tmp_path).ok

    with session_scope(engine) as session:
        session.execute(
            update(models.OperatorAct).where(models.OperatorAct.seq == 2).values(operator="li")
        )
    with session_scope(engine) as session:
        problems = [str(p) for p in verify_chain(session, tmp_path).problems]
    assert problems == ["chain: operator log entry 2 was changed"]
    engine.dispose()


def test_a_new_or_changed_calendar_override_file_is_logged_once(database_url, catalogue, tmp_path):
    engine = make_engine(database_url)
    overrides = tmp_path / "calendar.toml"
    overrides.write_text("holidays = [2027-02-08]\n")
    for _ in range(2):
        prepare_database(engine, catalogue, calendar_file=overrides)
    overrides.write_text("holidays = [2027-02-08, 2027-02-09]\n")
    prepare_database(engine, catalogue, calendar_file=overrides)
    log = acts(engine)
    assert [a.action for a in log] == ["calendar.overrides", "calendar.overrides"]
    assert [a.details["holidays"] for a in log] == [
        ["2027-02-08"],
        ["2027-02-08", "2027-02-09"],
    ]
    assert {a.via for a in log} == {"start"}
    engine.dispose()

"""``bcpi exchanges`` and ``bcpi keys``: who may push trades and who may read.

A new key is printed alone on stdout (shown once: only its hash is stored)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from cli.common import DatabaseUrl, engine_of, fail, prepared, reports_errors, say, settings_for
from cli.exchanges import database_shown, exchange_rows, exchanges_table
from cli.governance import OperatorName, operator_of
from store.db import session_scope
from store.operator_log import record_act
from store.reference import (
    add_exchange,
    check_exchange_code,
    create_key,
    revoke_key,
    rotate_exchange_key,
)

exchanges_app = typer.Typer(help="Exchanges and their API keys.", no_args_is_help=True)
keys_app = typer.Typer(help="Admin and read API keys.", no_args_is_help=True)


@exchanges_app.command("add")
@reports_errors
def exchanges_add(
    code: str,
    name: Annotated[str, typer.Option(help="Full name of the exchange.")],
    operator: OperatorName = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Register an exchange; prints its new API key alone on stdout (shown once). CODE: 2 to
    16 of A-Z, 0-9, _ and -."""
    check_exchange_code(code)
    engine = prepared(database_url).engine
    with session_scope(engine) as session:
        existing = exchange_rows(session, code)
        if existing and existing[0].keys:
            raise fail(_taken(existing[0], database_shown(engine)))
        if existing:
            # Registered for file feeds (as `bcpi demo` and `bcpi ingest` do), never given a
            # key: adding it gives it its first key and the name.
            exchange, key = rotate_exchange_key(session, code)
            exchange.name = name
        else:
            _, key = add_exchange(session, code, name)
        details = {"exchange": code, "name": name, "key": key[:12]}
        if existing:
            details["registered_without_key"] = True
        record_act(session, operator_of(operator), "exchange.add", details)
    done = "given its first API key" if existing else "added"
    say(f"exchange {code} {done}; its API key follows (it is not stored and cannot be shown again)")
    typer.echo(key)


def _taken(row, database: str) -> str:
    live = f"{row.active_keys} active key(s)" if row.active_keys else "only revoked keys"
    return (
        f"exchange {row.code!r} ({row.name}) already exists in {database} with {live};"
        f" `bcpi exchanges rotate-key {row.code}` revokes its keys and prints a new one, or"
        " choose another code (`bcpi exchanges list` shows those taken; --database-url or"
        " BCPI_DATABASE_URL picks another database)"
    )


@exchanges_app.command("list")
@reports_errors
def exchanges_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout, for scripts.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Every exchange: code, name, exchange keys (active of them), last batch received and
    trades stored."""
    engine = prepared(database_url).engine
    with session_scope(engine) as session:
        rows = exchange_rows(session)
    if as_json:
        typer.echo(json.dumps([row.dump() for row in rows], ensure_ascii=False, indent=2))
        return
    Console(highlight=False).print(exchanges_table(rows))
    say(f"database: {database_shown(engine)}")


@exchanges_app.command("rotate-key")
@reports_errors
def exchanges_rotate_key(
    code: str, operator: OperatorName = None, database_url: DatabaseUrl = None
) -> None:
    """Revoke the exchange's keys and print a new one alone on stdout (shown once)."""
    with session_scope(prepared(database_url).engine) as session:
        _, key = rotate_exchange_key(session, code)
        details = {"exchange": code, "key": key[:12]}
        record_act(session, operator_of(operator), "key.rotate", details)
    say(f"the keys of exchange {code} are revoked; its new API key follows (shown once)")
    typer.echo(key)


@keys_app.command("create")
@reports_errors
def keys_create(
    role: Annotated[str, typer.Option("--role", help="admin, read, auditor or metrics.")],
    operator: OperatorName = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an admin, read, auditor or metrics key; prints it alone on stdout (shown once)."""
    with session_scope(prepared(database_url).engine) as session:
        key = create_key(session, role)
        record_act(session, operator_of(operator), "key.create", {"role": role, "key": key[:12]})
    say(f"new {role} key follows (it is not stored and cannot be shown again)")
    typer.echo(key)


@keys_app.command("revoke")
@reports_errors
def keys_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's first 12 characters.")],
    operator: OperatorName = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke the key that starts with PREFIX."""
    with session_scope(engine_of(settings_for(database_url))) as session:
        revoked = revoke_key(session, prefix)
        if not revoked:
            raise fail(f"no live key starts with {prefix!r}")
        record_act(
            session, operator_of(operator), "key.revoke", {"key": prefix, "revoked": revoked}
        )
    say(f"revoked {revoked} key(s)")

"""``BCPI_READ_DATABASE_URL``: the API's reads go to a replica, its writes to the primary.

The replica is stood in for by a connection to the same PostgreSQL database with
``default_transaction_read_only=on``: any request that tried to write through it would fail
with PostgreSQL's read-only error (a 5xx), so every read route answering, and a push still
being stored, shows which connection each took."""

from __future__ import annotations

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import InternalError, OperationalError

from store.bootstrap import prepare_database
from store.db import make_engine, read_engine_for, session_scope
from store.models import IndexDefinition, IndexValue
from tests.support_api import app_for, issue_keys, own_trade_rows, seed_history

READ_ONLY = "options=-c%20default_transaction_read_only%3Don&application_name=bcpi-replica"


def _replica(url: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{READ_ONLY}"


@pytest.mark.postgres
def test_reads_go_to_the_replica_and_writes_to_the_primary(postgres_url, catalogue, tmp_path):
    engine = make_engine(postgres_url)
    prepare_database(engine, catalogue)
    seed_history(engine, catalogue, tmp_path / "feeds")
    keys = issue_keys(engine)
    replica = _replica(postgres_url)
    with (
        read_engine_for(replica).connect() as connection,
        pytest.raises((InternalError, OperationalError), match="read-only"),
    ):
        connection.execute(text("CREATE TABLE replica_probe (id int)"))

    app = app_for(postgres_url, tmp_path, read_database_url=replica)
    from tests.test_abuse_access import RULES, SAMPLES

    admin = {"X-API-Key": keys.admin}
    with TestClient(app) as client:
        answered = 0
        for context in iter_route_contexts(app.routes):
            path = context.path
            if "GET" not in (context.methods or set()) or RULES.get(("GET", path)) != "read":
                continue
            sample = SAMPLES[path]
            # the event stream answers what was published after the event id, then ends
            headers = {**admin, "Last-Event-ID": "0"} if path == "/v1/stream" else admin
            answer = client.get(sample, headers=headers)
            assert answer.status_code < 500, (sample, answer.status_code, answer.text[:300])
            answered += 1
        assert answered >= 15

        with session_scope(engine) as session:
            code, date, value = session.execute(
                select(IndexDefinition.code, IndexValue.date, IndexValue.value)
                .join(IndexDefinition, IndexDefinition.id == IndexValue.index_id)
                .where(IndexValue.superseded_at.is_(None))
                .order_by(IndexValue.date.desc(), IndexValue.id.desc())
                .limit(1)
            ).one()
        latest = client.get(f"/v1/indices/{code}/latest", headers=admin).json()
        assert (latest["date"], latest["value"]) == (date.isoformat(), value)

        with engine.connect() as connection:  # the replica's pooled connections are open
            replica_connections = connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bcpi-replica'"
                )
            )
        assert replica_connections >= 1

        pushed = client.post(
            "/v1/trades", json=own_trade_rows(), headers={"X-API-Key": keys.exchange}
        )
        assert pushed.status_code == 200, pushed.text
        assert pushed.json()["accepted"] == len(own_trade_rows())
    engine.dispose()

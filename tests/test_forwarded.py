"""X-Forwarded-For is believed only from a configured proxy: from any other peer, even a
loopback one, the connection's own address is the client's (its rate-limit bucket)."""

from __future__ import annotations

import httpx

from tests.test_abuse_limits import Server, _environment

LIMIT = 3


def _answers(server: Server) -> list[int]:
    """Anonymous reads from one connection address, each claiming another client."""
    return [
        httpx.get(
            server.url + "/v1/commodities",
            headers={"X-Forwarded-For": f"203.0.113.{n}"},
            timeout=10,
        ).status_code
        for n in range(2 * LIMIT)
    ]


def test_forwarded_addresses_are_ignored_unless_the_peer_is_a_trusted_proxy(database_url, tmp_path):
    limits = {"anonymous_rate_limit": LIMIT, "read_rate_limit": 1000}
    server = Server(_environment(database_url, tmp_path, **limits), tmp_path / "plain.log")
    try:
        plain = _answers(server)
    finally:
        server.stop()
    assert plain[:LIMIT] == [200] * LIMIT and set(plain[LIMIT:]) == {429}

    env = _environment(database_url, tmp_path, trusted_proxies="127.0.0.1", **limits)
    server = Server(env, tmp_path / "proxied.log")
    try:
        proxied = _answers(server)
    finally:
        server.stop()
    assert proxied == [200] * (2 * LIMIT)  # each forwarded client has its own bucket

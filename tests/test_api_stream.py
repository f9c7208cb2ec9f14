"""Server-sent events over a real server: new values arrive live; a reconnect resumes."""

from __future__ import annotations

import datetime as dt
import json
import threading

import httpx

from tests.publication_data import T0, publish_index
from tests.publication_server import serve


def _events(response, count: int) -> list[dict]:
    events, current = [], {}
    for line in response.iter_lines():
        if line == "":
            if "data" in current:
                events.append(current)
                if len(events) == count:
                    break
            current = {}
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(": ")
            current[name] = value
    return events


def test_new_provisional_and_final_values_are_pushed_as_they_are_published(engine, database_url):
    day = dt.date(2026, 3, 2)
    with serve(database_url, stream_poll_seconds="0.05") as server:
        received: list[dict] = []
        connected = threading.Event()

        def listen():
            with httpx.stream(
                "GET", server.url + "/v1/stream", params={"codes": "BCPI", "limit": 3}, timeout=30
            ) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                connected.set()
                received.extend(_events(response, 3))

        listener = threading.Thread(target=listen)
        listener.start()
        assert connected.wait(10)
        publish_index(engine, "BCPI-AGR", {day: 900.0}, now=T0, status="provisional")
        publish_index(engine, "BCPI", {day: 1000.0}, now=T0, status="provisional")
        publish_index(
            engine, "BCPI", {day: 1001.0}, now=T0 + dt.timedelta(minutes=1), status="provisional"
        )
        publish_index(engine, "BCPI", {day: 1002.0}, now=T0 + dt.timedelta(hours=6), status="final")
        listener.join(30)
        assert not listener.is_alive()

        values = [json.loads(e["data"]) for e in received]
        assert [(v["code"], v["value"], v["status"], v["vintage"]) for v in values] == [
            ("BCPI", 1000.0, "provisional", 1),
            ("BCPI", 1001.0, "provisional", 2),
            ("BCPI", 1002.0, "final", 3),
        ]
        assert all(e["event"] == "value" for e in received)
        ids = [int(e["id"]) for e in received]
        assert ids == sorted(ids)

        # Reconnecting with Last-Event-ID replays what came after it, every index.
        with httpx.stream(
            "GET",
            server.url + "/v1/stream",
            params={"limit": 2},
            headers={"Last-Event-ID": str(ids[0] - 2)},
            timeout=30,
        ) as response:
            replay = [json.loads(e["data"]) for e in _events(response, 2)]
        assert [(v["code"], v["value"]) for v in replay] == [("BCPI-AGR", 900.0), ("BCPI", 1000.0)]

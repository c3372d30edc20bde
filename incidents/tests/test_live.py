"""The console's server-sent events, over a real ASGI server: changes arrive within a
second, a reconnect replays what was missed, and a second server process sees changes
made elsewhere (polling on SQLite, NOTIFY on PostgreSQL)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from accounts.models import Role, User
from conftest import FRUITVALE, LiveServer, make_user
from incidents import actions
from incidents.console import latest_event_id
from incidents.models import IncidentStatus
from intake.tests.factories import web_report

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Event:
    id: int
    name: str
    data: dict[str, object]


class EventStream:
    """A minimal EventSource: reads ``text/event-stream`` from a console server."""

    def __init__(
        self, port: int, session: str, *, after: int | None = None, last_event_id: int | None = None
    ) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        path = "/console/events/" + (f"?after={after}" if after is not None else "")
        headers = {"Cookie": f"sessionid={session}", "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.conn.request("GET", path, headers=headers)
        self.response = self.conn.getresponse()
        self.status = self.response.status

    def events(self, *, within: float) -> Iterator[Event]:
        deadline = time.monotonic() + within
        fields: dict[str, str] = {}
        while time.monotonic() < deadline:
            assert self.conn.sock is not None
            self.conn.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                raw = self.response.readline()
            except TimeoutError:
                return
            if not raw:
                return
            line = raw.decode().rstrip("\n")
            if line == "":
                if "data" in fields and "id" in fields:
                    yield Event(
                        int(fields["id"]),
                        fields.get("event", "message"),
                        json.loads(fields["data"]),
                    )
                fields = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(": ")
                fields[key] = value

    def next_event(self, *, within: float = 2.0) -> Event | None:
        return next(self.events(within=within), None)

    def close(self) -> None:
        self.conn.close()


def session_for(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@pytest.fixture
def dispatcher_session(transactional_db: None) -> tuple[User, str]:
    user = make_user(Role.DISPATCHER)
    return user, session_for(user)


def test_a_new_report_reaches_a_connected_console_within_a_second(
    live_asgi: LiveServer, dispatcher_session: tuple[User, str]
) -> None:
    _, session = dispatcher_session
    stream = EventStream(live_asgi.port, session, after=latest_event_id())
    assert stream.status == 200
    assert stream.response.getheader("Content-Type", "").startswith("text/event-stream")
    time.sleep(0.2)
    started = time.monotonic()
    report = web_report("agents at the laundromat", at=FRUITVALE)
    event = stream.next_event(within=3)
    elapsed = time.monotonic() - started
    stream.close()
    assert event is not None and event.name == "incident"
    assert report.incident is not None and event.data["id"] == str(report.incident.uuid)
    assert event.data["open"] is True
    assert "agents at the laundromat" in str(event.data["html"])
    assert elapsed < 1.0


def test_a_reconnect_replays_what_was_missed(
    live_asgi: LiveServer, dispatcher_session: tuple[User, str]
) -> None:
    user, session = dispatcher_session
    before = latest_event_id()
    report = web_report(at=FRUITVALE)
    assert report.incident is not None
    actions.change_status(
        actor=user, incident=report.incident, status=IncidentStatus.VERIFYING, reason="sent two"
    )
    unplaced = web_report("no place given", where="near the school")
    stream = EventStream(live_asgi.port, session, after=0, last_event_id=before)
    received = list(stream.events(within=1.5))
    stream.close()
    ids = [e.id for e in received]
    assert ids == sorted(ids) and ids[0] > before
    assert {e.name for e in received} == {"incident", "report"}
    assert any(e.data.get("id") == str(unplaced.uuid) and e.data["queued"] for e in received)
    assert "Verifying" in str(received[-2].data.get("html", "")) or any(
        "Verifying" in str(e.data.get("html", "")) for e in received
    )


def test_a_closed_incident_leaves_the_console(
    live_asgi: LiveServer, dispatcher_session: tuple[User, str]
) -> None:
    user, session = dispatcher_session
    report = web_report(at=FRUITVALE)
    assert report.incident is not None
    stream = EventStream(live_asgi.port, session, after=latest_event_id())
    time.sleep(0.2)
    actions.change_status(
        actor=user, incident=report.incident, status=IncidentStatus.CLOSED, reason="duplicate"
    )
    event = stream.next_event(within=3)
    stream.close()
    assert event is not None and event.data == {"id": str(report.incident.uuid), "open": False}


def test_only_dispatchers_get_the_stream(live_asgi: LiveServer, transactional_db: None) -> None:
    verifier = make_user(Role.VERIFIER)
    denied = EventStream(live_asgi.port, session_for(verifier))
    assert denied.status == 403
    denied.close()
    anonymous = EventStream(live_asgi.port, "not-a-session")
    assert anonymous.status == 302
    anonymous.close()


def _database_url() -> str:
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


def test_another_server_process_sees_changes_made_here(
    dispatcher_session: tuple[User, str],
) -> None:
    _, session = dispatcher_session
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "rapidresponse.test_settings",
        "DATABASE_URL": _database_url(),
        "RR_CONSOLE_POLL_SECONDS": "0.2",
    }
    server = subprocess.Popen(  # noqa: S603 - our interpreter running uvicorn on loopback
        [
            sys.executable,
            "-m",
            "uvicorn",
            "rapidresponse.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--lifespan",
            "off",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(
                        server.stderr.read().decode() if server.stderr else ""
                    ) from None
                time.sleep(0.1)
        stream = EventStream(port, session, after=latest_event_id())
        assert stream.status == 200
        time.sleep(0.5)
        started = time.monotonic()
        report = web_report("vans at the church", at=FRUITVALE)
        event = stream.next_event(within=5)
        elapsed = time.monotonic() - started
        stream.close()
        assert event is not None and report.incident is not None
        assert event.data["id"] == str(report.incident.uuid)
        assert elapsed < 1.0
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_stream_ends_and_a_logged_out_dispatcher_gets_nothing_more(
    live_asgi: LiveServer, dispatcher_session: tuple[User, str], settings: object
) -> None:
    from django.contrib.sessions.models import Session

    settings.RR_CONSOLE_STREAM_SECONDS = 1  # type: ignore[attr-defined]
    _, session = dispatcher_session
    stream = EventStream(live_asgi.port, session, after=latest_event_id())
    assert stream.status == 200
    started = time.monotonic()
    while stream.response.readline():
        if time.monotonic() - started > 5:
            break
    assert time.monotonic() - started < 5, "the stream should end on its own"
    stream.close()
    Session.objects.all().delete()  # logged out
    again = EventStream(live_asgi.port, session, after=latest_event_id())
    assert again.status == 302
    again.close()

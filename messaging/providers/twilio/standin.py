"""A local stand-in for the Twilio Messages API, for tests and benchmarks.

It speaks enough of the API for the official client: it accepts messages, places and
updates calls (the hotline ringing dispatchers), serves recordings, deletes messages,
calls and recordings (retention: each DELETE is recorded in ``deleted``), can answer
429 above a rate or fail on demand, adds optional latency, and records every message
it accepts with the parameters the sender chose (``ValidityPeriod``,
``StatusCallback``). It listens on loopback only.

    with TwilioStandIn() as api:
        settings.TWILIO_API_BASE = api.url
        ...
        api.messages  # what was sent
        api.deleted  # ("message" | "call" | "recording", sid) for every DELETE
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    sid: str
    to: str
    body: str
    sender: str
    at: float
    created: float = field(default_factory=time.time)
    # Seconds Twilio would keep the message queued before dropping it; None if not set.
    validity_period: int | None = None
    # Where Twilio would post the message's delivery statuses; empty if not set.
    status_callback: str = ""


@dataclass
class PlacedCall:
    """A call the hotline asked Twilio to place (a dispatcher's phone ringing)."""

    sid: str
    to: str
    sender: str
    url: str
    status_callback: str
    timeout: int | None
    # Every status the hotline set later (``canceled``, ``completed``).
    updates: list[str] = field(default_factory=list)


@dataclass
class Failure:
    status: int
    code: int
    message: str


@dataclass
class StandInState:
    account_sid: str
    auth_token: str
    rate_per_second: float | None = None
    # Twilio refuses requests above a number in progress at once (429, 20429).
    max_concurrent: int | None = None
    latency_seconds: float = 0.0
    in_progress: int = 0
    max_seen_concurrent: int = 0
    messages: list[Received] = field(default_factory=list)
    calls: list[PlacedCall] = field(default_factory=list)
    recordings: dict[str, bytes] = field(default_factory=dict)
    # Every resource deleted, in order: ("message" | "call" | "recording", sid).
    deleted: list[tuple[str, str]] = field(default_factory=list)
    rejected_429: int = 0
    failures: deque[Failure] = field(default_factory=deque)
    recent: deque[float] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # Keep-alive, as Twilio's API: a sender reuses its connections (every answer here
    # carries its length).
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``messages`` instead."""

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _fail_if_asked(self) -> bool:
        """Answer with the next failure queued by ``fail_next``, if any (the caller
        holds the state's lock)."""
        state = self.server.state
        if not state.failures:
            return False
        failure = state.failures.popleft()
        self._json(
            failure.status,
            {"code": failure.code, "message": failure.message, "status": failure.status},
        )
        return True

    def _not_found(self) -> None:
        self._json(404, {"code": 20404, "message": "Not found", "status": 404})

    # The API paths the stand-in answers below the account: (kind, pattern of the rest).
    _PATHS = (
        ("messages", re.compile(r"/Messages\.json")),
        ("message", re.compile(r"/Messages/((?:SM|MM)\w+)\.json")),
        ("calls", re.compile(r"/Calls\.json")),
        ("call", re.compile(r"/Calls/(CA\w+)\.json")),
        ("recording", re.compile(r"/Recordings/(RE\w+)\.mp3")),
        ("recording-resource", re.compile(r"/Recordings/(RE\w+)\.json")),
        ("queue", re.compile(r"/Queues/(QU\w+)\.json")),
    )

    def _resource_of(self, path: str) -> tuple[str, str]:
        """(one of the kinds in _PATHS, or "", the id in the path)."""
        base = f"/2010-04-01/Accounts/{self.server.state.account_sid}"
        if not path.startswith(base):
            return "", ""
        for kind, pattern in self._PATHS:
            found = pattern.fullmatch(path[len(base) :])
            if found:
                return kind, found.group(1) if pattern.groups else ""
        return "", ""

    def _authorized(self, path: str) -> bool:
        state = self.server.state
        if not self._resource_of(path)[0]:
            self._not_found()
            return False
        credentials = base64.b64encode(f"{state.account_sid}:{state.auth_token}".encode()).decode()
        if self.headers.get("Authorization") != f"Basic {credentials}":
            self._json(401, {"code": 20003, "message": "Authenticate", "status": 401})
            return False
        return True

    def _resource(self, message: Received) -> dict[str, Any]:
        state = self.server.state
        return {
            "sid": message.sid,
            "account_sid": state.account_sid,
            "to": message.to,
            "from": message.sender,
            "body": message.body,
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": formatdate(message.created, usegmt=True),
            "uri": f"/2010-04-01/Accounts/{state.account_sid}/Messages/{message.sid}.json",
        }

    def do_GET(self) -> None:
        """List messages, newest first, optionally only those to one number (``To``);
        or the audio of a recording."""
        url = urlsplit(self.path)
        if not self._authorized(url.path):
            return
        kind, sid = self._resource_of(url.path)
        if kind == "recording":
            with self.server.state.lock:
                audio = self.server.state.recordings.get(sid)
            if audio is None:
                self._not_found()
                return
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", str(len(audio)))
            self.end_headers()
            self.wfile.write(audio)
            return
        if kind != "messages":
            self._not_found()
            return
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        page_size = min(1000, int(query.get("PageSize", "50")))
        with self.server.state.lock:
            gone = {sid for kind, sid in self.server.state.deleted if kind == "message"}
            found = [
                m
                for m in self.server.state.messages
                if m.to == query.get("To", m.to) and m.sid not in gone
            ]
        found.reverse()
        self._json(
            200,
            {
                "messages": [self._resource(m) for m in found[:page_size]],
                "next_page_uri": None,
                "page": 0,
                "page_size": page_size,
                "uri": url.path,
            },
        )

    def do_POST(self) -> None:
        state = self.server.state
        if not self._authorized(self.path):
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if len(raw) < length:
            # The client died mid-request (a SIGKILLed sender): Twilio never sees a
            # message it did not receive whole, so neither does the stand-in.
            self.close_connection = True
            return
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        kind, sid = self._resource_of(urlsplit(self.path).path)
        if kind in {"calls", "call"}:
            self._call(form, sid)
            return
        if kind != "messages":
            self._not_found()
            return
        if not form.get("To"):
            self._json(
                400, {"code": 21604, "message": "A 'To' phone number is required.", "status": 400}
            )
            return
        with state.lock:
            state.in_progress += 1
            state.max_seen_concurrent = max(state.max_seen_concurrent, state.in_progress)
            too_many = state.max_concurrent is not None and state.in_progress > state.max_concurrent
        try:
            if too_many:
                with state.lock:
                    state.rejected_429 += 1
                self._json(429, {"code": 20429, "message": "Too Many Requests", "status": 429})
                return
            if state.latency_seconds:
                time.sleep(state.latency_seconds)
            self._accept(form)
        finally:
            with state.lock:
                state.in_progress -= 1

    def do_DELETE(self) -> None:
        """Delete a message, a call, a recording or a queue: 204, or 404 when it is already gone
        (the real API's answers). The stand-in knows only the messages it accepted, so
        any well-formed sid it has not deleted yet counts as present."""
        state = self.server.state
        path = urlsplit(self.path).path
        if not self._authorized(path):
            return
        kind, sid = self._resource_of(path)
        kinds = {
            "message": "message",
            "call": "call",
            "recording-resource": "recording",
            "queue": "queue",
        }
        if kind not in kinds:
            self._not_found()
            return
        with state.lock:
            if self._fail_if_asked():
                return
            entry = (kinds[kind], sid)
            gone = entry in state.deleted
            if not gone:
                state.deleted.append(entry)
                state.recordings.pop(sid, None)
        if gone:
            self._not_found()
            return
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _accept(self, form: dict[str, str]) -> None:
        state = self.server.state
        with state.lock:
            now = time.monotonic()
            if self._fail_if_asked():
                return
            if state.rate_per_second:
                while state.recent and now - state.recent[0] > 1.0:
                    state.recent.popleft()
                if len(state.recent) >= state.rate_per_second:
                    state.rejected_429 += 1
                    self._json(429, {"code": 20429, "message": "Too Many Requests", "status": 429})
                    return
                state.recent.append(now)
            received = Received(
                sid="SM" + uuid.uuid4().hex,
                to=form.get("To", ""),
                body=form.get("Body", ""),
                sender=form.get("From", form.get("MessagingServiceSid", "")),
                at=now,
                validity_period=_int_or_none(form.get("ValidityPeriod")),
                status_callback=form.get("StatusCallback", ""),
            )
            state.messages.append(received)
        self._json(201, self._resource(received))

    def _call(self, form: dict[str, str], sid: str) -> None:
        state = self.server.state
        with state.lock:
            if self._fail_if_asked():
                return
            if not sid:
                placed = PlacedCall(
                    sid="CA" + uuid.uuid4().hex,
                    to=form.get("To", ""),
                    sender=form.get("From", ""),
                    url=form.get("Url", ""),
                    status_callback=form.get("StatusCallback", ""),
                    timeout=_int_or_none(form.get("Timeout")),
                )
                state.calls.append(placed)
                status = 201
            else:
                known = [call for call in state.calls if call.sid == sid]
                if not known:
                    self._not_found()
                    return
                placed = known[0]
                placed.updates.append(form.get("Status", ""))
                status = 200
        self._json(
            status,
            {
                "sid": placed.sid,
                "account_sid": state.account_sid,
                "to": placed.to,
                "from": placed.sender,
                "status": placed.updates[-1] if placed.updates else "queued",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{state.account_sid}/Calls/{placed.sid}.json",
            },
        )


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 dropped some of a sender's ten or more first connections
    # at once, which then failed as unreachable.
    request_queue_size = 128
    state: StandInState


class TwilioStandIn:
    def __init__(
        self,
        *,
        account_sid: str = "ACtest",
        auth_token: str = "test-auth-token",  # noqa: S107 - a loopback stand-in
    ) -> None:
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.state = StandInState(account_sid=account_sid, auth_token=auth_token)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def state(self) -> StandInState:
        return self.server.state

    @property
    def messages(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.messages)

    @property
    def calls(self) -> list[PlacedCall]:
        with self.state.lock:
            return list(self.state.calls)

    @property
    def deleted(self) -> list[tuple[str, str]]:
        with self.state.lock:
            return list(self.state.deleted)

    def add_recording(self, sid: str, audio: bytes) -> None:
        with self.state.lock:
            self.state.recordings[sid] = audio

    def fail_next(self, count: int = 1, *, status: int = 500, code: int = 20500) -> None:
        with self.state.lock:
            for _ in range(count):
                self.state.failures.append(Failure(status, code, "Failed on demand"))

    def __enter__(self) -> TwilioStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def main() -> None:
    """Run the stand-in in its own process (benchmarks: so it does not share the
    sender's interpreter). Prints its URL, then serves until killed."""
    import argparse

    parser = argparse.ArgumentParser(description="A local stand-in for the Twilio Messages API")
    parser.add_argument("--account-sid", default="ACtest")
    parser.add_argument("--auth-token", default="test-auth-token")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--max-concurrent", type=int, default=None)
    parser.add_argument("--rate", type=float, default=None, help="429 above this per second")
    args = parser.parse_args()
    api = TwilioStandIn(account_sid=args.account_sid, auth_token=args.auth_token)
    api.state.latency_seconds = args.latency
    api.state.max_concurrent = args.max_concurrent
    api.state.rate_per_second = args.rate
    print(api.url, flush=True)
    api.server.serve_forever()


if __name__ == "__main__":
    main()

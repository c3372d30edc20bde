"""A local stand-in for the Twilio Messages API, for tests and benchmarks.

It speaks enough of the API for the official client: it accepts messages, can answer
429 above a rate or fail on demand, adds optional latency, and records every request.
It listens on loopback only.

    with TwilioStandIn() as api:
        settings.TWILIO_API_BASE = api.url
        ...
        api.messages  # what was sent
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Received:
    sid: str
    to: str
    body: str
    sender: str
    at: float


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
    latency_seconds: float = 0.0
    messages: list[Received] = field(default_factory=list)
    rejected_429: int = 0
    failures: deque[Failure] = field(default_factory=deque)
    recent: deque[float] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``messages`` instead."""

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        state = self.server.state
        expected = f"/2010-04-01/Accounts/{state.account_sid}/Messages.json"
        if self.path != expected:
            self._json(404, {"code": 20404, "message": "Not found", "status": 404})
            return
        credentials = base64.b64encode(f"{state.account_sid}:{state.auth_token}".encode()).decode()
        if self.headers.get("Authorization") != f"Basic {credentials}":
            self._json(401, {"code": 20003, "message": "Authenticate", "status": 401})
            return
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if state.latency_seconds:
            time.sleep(state.latency_seconds)
        with state.lock:
            now = time.monotonic()
            if state.failures:
                failure = state.failures.popleft()
                self._json(
                    failure.status,
                    {"code": failure.code, "message": failure.message, "status": failure.status},
                )
                return
            if state.rate_per_second:
                while state.recent and now - state.recent[0] > 1.0:
                    state.recent.popleft()
                if len(state.recent) >= state.rate_per_second:
                    state.rejected_429 += 1
                    self._json(429, {"code": 20429, "message": "Too Many Requests", "status": 429})
                    return
                state.recent.append(now)
            sid = "SM" + uuid.uuid4().hex
            state.messages.append(
                Received(
                    sid=sid,
                    to=form.get("To", ""),
                    body=form.get("Body", ""),
                    sender=form.get("From", form.get("MessagingServiceSid", "")),
                    at=now,
                )
            )
        self._json(
            201,
            {
                "sid": sid,
                "account_sid": state.account_sid,
                "to": form.get("To"),
                "from": form.get("From"),
                "body": form.get("Body"),
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "uri": f"{expected[:-5]}/{sid}.json",
            },
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
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

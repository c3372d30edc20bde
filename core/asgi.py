"""ASGI wrappers: a body-size limit applied before Django reads the body, and a count of
the requests waiting in this process on the paths that care about it.

Under ASGI, Django reads the whole body (spooling it to disk) before any middleware
runs, and a chunked request has no Content-Length to check. ``BodySizeLimit`` answers
413 at once when the declared length is too large, and stops a chunked body at the
limit.

``InFlight`` counts the requests on given paths that this process has accepted and not
yet begun to answer. Django gives each request's synchronous code a thread of its own,
and those threads share one interpreter, so past a few that count is the webhook's
backlog: the SMS webhook reads it (``waiting``) to put texts in the spool rather than
keep the provider waiting behind it (``messaging.spool``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from core.middleware import body_limit_for

Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _plain(send: Send, status: int, text: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": text})


class BodySizeLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit_for(scope.get("path", ""))
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _plain(send, 400, b"Invalid Content-Length.\n")
                return
            if int(declared) > limit:
                await _plain(send, 413, b"The request body is too large.\n")
                return
            # The server delivers no more than the declared length.
            await self.app(scope, receive, send)
            return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    # Django stops reading and abandons the request on a disconnect.
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)
        if exceeded and not started:
            await _plain(send, 413, b"The request body is too large.\n")


# Requests accepted and not yet begun to answer, per counted path, in this process. Changed
# only on the event loop's thread; read from the view's thread (a plain int read).
_in_flight: Counter[str] = Counter()


def waiting(path: str) -> int:
    """Requests on ``path`` this process is working on or has queued (0 when the path
    is not counted, or outside an ASGI server)."""
    return _in_flight[path]


class InFlight:
    def __init__(self, app: ASGIApp, paths: Collection[str]) -> None:
        self.app = app
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path not in self.paths:
            await self.app(scope, receive, send)
            return
        _in_flight[path] += 1
        counted = True

        async def answering(message: Message) -> None:
            nonlocal counted
            # Answered once the response starts: what Django does after it (closing the
            # response, request_finished) is not the provider's wait.
            if counted and message["type"] == "http.response.start":
                _in_flight[path] -= 1
                counted = False
            await send(message)

        try:
            await self.app(scope, receive, answering)
        finally:
            if counted:
                _in_flight[path] -= 1

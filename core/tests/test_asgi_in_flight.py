"""core.asgi.InFlight: how many requests on a path wait for their answer in this process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from core import asgi

PATH = "/hooks/twilio/sms"


def run_alone(make: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """asyncio.run on a thread of its own: the browser tests leave an event loop
    running on the main thread, where asyncio.run refuses to start."""
    failures: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(make())
        except BaseException as exc:  # handed to the test's thread
            failures.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


def test_requests_count_until_their_response_starts() -> None:
    gates: list[asyncio.Event] = []
    seen: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        gate = asyncio.Event()
        gates.append(gate)
        await gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        # Django closes the response after this, behind other views: no longer waiting.
        seen.append(asgi.waiting(PATH))
        await send({"type": "http.response.body", "body": b""})

    counted = asgi.InFlight(app, paths=[PATH])

    async def sent(message: Any) -> None:
        return None

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def run() -> None:
        tasks = [
            asyncio.create_task(counted({"type": "http", "path": PATH}, receive, sent))
            for _ in range(3)
        ]
        other = asyncio.create_task(counted({"type": "http", "path": "/healthz"}, receive, sent))
        while len(gates) < 4:
            await asyncio.sleep(0)
        assert asgi.waiting(PATH) == 3 and asgi.waiting("/healthz") == 0
        for gate in gates:
            gate.set()
        await asyncio.gather(*tasks, other)

    run_alone(run)
    assert asgi.waiting(PATH) == 0
    assert sorted(seen) == [0, 0, 1, 2]  # each one stops counting as it answers


def test_a_request_that_fails_before_answering_stops_counting() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise RuntimeError("the view failed")

    counted = asgi.InFlight(app, paths=[PATH])

    async def run() -> None:
        with pytest.raises(RuntimeError):
            await counted({"type": "http", "path": PATH}, None, None)  # type: ignore[arg-type]

    run_alone(run)
    assert asgi.waiting(PATH) == 0

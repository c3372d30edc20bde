"""The benchmark helpers that compute figures: a wrong one would report a wrong verdict."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

import pytest

from bench import lib

T = TypeVar("T")


def run_in_thread(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """asyncio.run in a thread of its own: earlier tests in the suite (Playwright's sync
    API) can leave an event loop set on the main thread."""
    box: list[T] = []
    thread = threading.Thread(target=lambda: box.append(asyncio.run(make())))
    thread.start()
    thread.join(timeout=30)
    assert box, "the coroutine did not finish"
    return box[0]


async def _request_heads(
    reader: asyncio.StreamReader, idle: float | None = None
) -> AsyncIterator[bytes]:
    """Each request's head as a test server reads it, until the client closes the
    connection (or, with ``idle``, sends nothing for that many seconds)."""
    while True:
        try:
            yield await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), idle)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            return


def test_percentile_is_nearest_rank() -> None:
    values = [float(i) for i in range(1, 101)]  # 1 … 100
    assert lib.percentile(values, 50) == 50
    assert lib.percentile(values, 99) == 99
    assert lib.percentile(values, 100) == 100
    assert lib.percentile([5.0, 1.0, 3.0], 99) == 5.0  # the slowest, not an interpolation
    assert lib.percentile([2.0], 1) == 2.0
    assert lib.percentile([], 50) != lib.percentile([], 50)  # NaN


def test_pairwise_f1_counts_pairs() -> None:
    perfect = lib.pairwise_f1(["a", "a", "b", "b"], [1, 1, 2, 2])
    assert (perfect.precision, perfect.recall, perfect.f1) == (1.0, 1.0, 1.0)
    # Everything in one group: 2 true pairs of 6 predicted.
    merged = lib.pairwise_f1(["a", "a", "b", "b"], [1, 1, 1, 1])
    assert merged.precision == pytest.approx(2 / 6)
    assert merged.recall == 1.0
    assert merged.f1 == pytest.approx(2 * (1 / 3) / (1 / 3 + 1))
    # One event split in two: 3 true pairs (a,a,a), one found.
    split = lib.pairwise_f1(["a", "a", "a"], [1, 1, 2])
    assert split.precision == 1.0
    assert split.recall == pytest.approx(1 / 3)


def test_pairwise_f1_treats_ungrouped_items_as_alone() -> None:
    scores = lib.pairwise_f1(["a", "a", "a"], [None, None, 1])
    assert scores.recall == 0.0  # two None are not a group together
    assert scores.f1 == 0.0
    with pytest.raises(ValueError, match="same items"):
        lib.pairwise_f1(["a"], [1, 2])


def test_same_partition_ignores_labels_only() -> None:
    assert lib.same_partition([1, 1, 2, 3], ["x", "x", "y", "z"])
    assert not lib.same_partition([1, 1, 2], ["x", "y", "y"])
    assert not lib.same_partition([1, 2], ["x", "x"])
    assert not lib.same_partition([1], [1, 1])


def test_nearest_first_order_check() -> None:
    ideal = lib.nearest_first(list(range(100)))
    assert ideal.first_tenth_below_median
    assert ideal.spearman == pytest.approx(1.0)
    assert ideal.max_displacement == 0
    # Concurrency swaps neighbours: still nearest first.
    jitter = [i + (1 if i % 2 == 0 else -1) for i in range(100)]
    assert lib.nearest_first(jitter).first_tenth_below_median
    assert lib.nearest_first(jitter).max_displacement == 1
    backwards = lib.nearest_first(list(range(99, -1, -1)))
    assert not backwards.first_tenth_below_median
    assert backwards.spearman == pytest.approx(-1.0)
    one_far_one_early = lib.nearest_first([99, *range(99)])
    assert not one_far_one_early.first_tenth_below_median


def test_target_verdicts() -> None:
    assert lib.Target("ratio", 0.6, ">=", 0.5).met
    assert not lib.Target("ratio", 0.4, ">=", 0.5).met
    assert lib.Target("p99 ms", 49.9, "<", 50).met
    assert not lib.Target("p99 ms", 50.0, "<", 50).met
    assert lib.Target("lost", 0, "==", 0).met
    assert not lib.Target("p99 ms", float("nan"), "<", 50).met
    assert not lib.Target("p99 ms", None, "<", 50).met
    assert lib.Target("identical", True, "==", True).as_dict() == {
        "target": "identical == True",
        "value": True,
        "met": True,
    }


def test_schedule_and_phases() -> None:
    offsets = lib.schedule(300, 2)
    assert len(offsets) == 600
    assert offsets[1] - offsets[0] == pytest.approx(1 / 300)
    assert offsets[-1] < 2
    burst = lib.phases([(10, 1.0), (50, 1.0)])
    assert len(burst) == 60
    assert burst[10] == pytest.approx(1.0)
    assert burst[11] - burst[10] == pytest.approx(1 / 50)
    assert lib.schedule(0, 5) == []


def test_open_loop_keeps_the_rate_against_a_slow_server() -> None:
    """A closed loop would send one request per 0.3 s answer on each connection; the
    open loop sends 40 in 0.4 s and charges the wait to each answer."""
    delay = 0.3

    async def run() -> tuple[lib.OpenLoopResult, list[float]]:
        arrivals: list[float] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            async for head in _request_heads(reader):
                arrivals.append(time.monotonic())
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                await asyncio.sleep(delay)
                status = b"204 No Content" if length else b"200 OK"
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        requests: list[tuple[str, str, bytes, dict[str, str]]] = [
            ("POST", "/x", b"a=1", {}),
            ("GET", "/y", b"", {}),
        ]
        async with server:
            result = await lib.open_loop(port, requests, lib.schedule(100, 0.4))
        return result, arrivals

    result, arrivals = run_in_thread(run)
    assert len(result.latencies) == 40
    assert result.statuses == {204: 20, 200: 20}
    assert result.non_2xx == 0
    assert arrivals[-1] - arrivals[0] < 0.39 + 0.15  # not 40 x 0.3 s
    assert min(result.latencies) >= delay
    assert lib.percentile(result.latencies, 99) < delay + 0.2


def test_open_loop_counts_refusals_and_errors() -> None:
    async def run() -> lib.OpenLoopResult:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 429 Too Many\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()  # then drops the connection: the next request on it fails

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await lib.open_loop(port, [("GET", "/", b"", {})], [0.0, 0.05], timeout=1)

    result = run_in_thread(run)
    assert result.statuses[429] >= 1
    assert result.non_2xx == 2


def test_open_loop_does_not_reuse_a_connection_the_server_may_be_closing() -> None:
    """A server that closes keep-alive connections idle for 0.3 s (uvicorn: 5 s), and
    requests 0.5 s apart: reusing the idle connection loses the request."""

    async def run(max_idle: float) -> tuple[lib.OpenLoopResult, int]:
        opened = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal opened
            opened += 1
            async for _head in _request_heads(reader, idle=0.3):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            result = await lib.open_loop(
                port, [("GET", "/", b"", {})], [0.0, 0.5, 1.0], timeout=1, max_idle=max_idle
            )
        return result, opened

    result, opened = run_in_thread(lambda: run(0.2))
    assert (result.statuses[200], result.failures, opened) == (3, 0, 3)
    stale, _opened = run_in_thread(lambda: run(10.0))
    # The second request is written onto the connection the server closed; the third
    # opens a new one, as the failed connection is dropped.
    assert (stale.statuses[200], stale.failures) == (2, 1)


async def _stepping_server(delay: float) -> tuple[asyncio.Server, list[tuple[float, bytes]]]:
    """Answers each request after ``delay`` with the next step's path: /step/1 -> 2."""
    arrivals: list[tuple[float, bytes]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for head in _request_heads(reader):
            path = head.split()[1]
            arrivals.append((time.monotonic(), path))
            await asyncio.sleep(delay)
            step = int(path.rsplit(b"/", 1)[1])
            if step == 99:  # a step that never answers
                await asyncio.sleep(10)
            body = b"/step/%d" % (step + 1)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0), arrivals


def _three_steps(first: str = "/step/1") -> lib.Session:
    async def session(exchange: lib.Exchange) -> None:
        path = first
        for _ in range(3):
            status, body = await exchange("GET", path, b"", {})
            if status != 200 or not body.startswith(b"/step/"):
                raise lib.SessionBroken(body)
            path = body.decode()

    return session


def test_open_loop_sessions_follow_each_answer_and_overlap() -> None:
    """Ten three-step sessions started 20 ms apart against 0.1 s answers: each step
    waits for the one before, the sessions do not wait for each other."""
    delay = 0.1

    async def run() -> tuple[lib.SessionResult, list[tuple[float, bytes]]]:
        server, arrivals = await _stepping_server(delay)
        port = server.sockets[0].getsockname()[1]
        async with server:
            offsets = [i * 0.02 for i in range(10)]
            return await lib.open_loop_sessions(port, [_three_steps()], offsets), arrivals

    result, arrivals = run_in_thread(run)
    assert (result.completed, result.failures, result.non_2xx) == (10, 0, 0)
    assert len(result.request_latencies) == 30 and min(result.request_latencies) >= delay
    assert min(result.session_latencies) >= 3 * delay
    # Each session's next step came after the answer naming it.
    assert sorted(path for _at, path in arrivals) == sorted(
        [b"/step/1", b"/step/2", b"/step/3"] * 10
    )
    assert arrivals[-1][0] - arrivals[0][0] < 10 * 3 * delay / 2  # overlapping, not serial


def test_sessions_that_break_or_get_no_answer_are_failures() -> None:
    async def run() -> lib.SessionResult:
        server, _arrivals = await _stepping_server(0.0)
        port = server.sockets[0].getsockname()[1]

        async def broken(exchange: lib.Exchange) -> None:
            await exchange("GET", "/step/1", b"", {})
            raise lib.SessionBroken("not what the caller expected")

        async with server:
            return await lib.open_loop_sessions(
                port, [_three_steps(), broken, _three_steps("/step/99")], [0, 0, 0], timeout=0.5
            )

    result = run_in_thread(run)
    assert (result.completed, result.failures) == (1, 2)
    assert len(result.session_latencies) == 1


def test_closed_loop_sessions_start_the_next_when_one_ends() -> None:
    async def run() -> lib.SessionResult:
        server, _arrivals = await _stepping_server(0.02)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await lib.closed_loop_sessions(
                port, lambda _i: _three_steps(), concurrency=2, seconds=0.5
            )

    result = run_in_thread(run)
    # Two clients, 60 ms a session: about 8 each in 0.5 s, never more than time allows.
    assert 8 <= result.completed <= 2 * (0.5 // 0.06 + 1)
    assert result.failures == 0


def test_sse_parser_splits_events_across_chunks() -> None:
    parser = lib.SSEParser()
    assert parser.feed("retry: 2000\n\n") == []
    assert parser.feed("id: 7\nevent: incident\nda") == []
    events = parser.feed('ta: {"a": 1}\n\n: keepalive\n\nid: 8\r\ndata: x\r\ndata: y\r\n\r\n')
    assert events == [
        lib.Event(id="7", event="incident", data='{"a": 1}'),
        lib.Event(id="8", event="message", data="x\ny"),
    ]


def test_read_chunk_decodes_chunked_bodies() -> None:
    async def run() -> list[bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(b"5\r\nhello\r\na;ext=1\r\n world\r\n!!\r\n0\r\n\r\n")
        reader.feed_eof()
        return [await lib.read_chunk(reader) for _ in range(3)]

    assert run_in_thread(run) == [b"hello", b" world\r\n!!", b""]


def test_markdown_report_puts_each_runs_verdict_side_by_side() -> None:
    from bench import report

    def run(database: str, value: float) -> dict[str, object]:
        target = lib.Target("p99 ms", value, "<", 2.0)
        return {
            "results": [
                {
                    "id": "B3",
                    "name": "matching",
                    "database": database,
                    "floor": "a scan",
                    "ratio": 100,
                    "targets": lib.targets(target),
                }
            ]
        }

    lines = report.rows([run("sqlite", 1.5), run("postgresql", 2.5)])
    assert lines[0] == "| # | benchmark | target | sqlite | postgresql |"
    assert lines[2] == "| B3 | matching | floor: a scan | ratio 100 | ratio 100 |"
    assert lines[3] == "| | | p99 ms < 2.0 | 1.5 (met) | 2.5 (**missed**) |"
    failed: dict[str, object] = {"results": []}
    assert report.rows([run("sqlite", 1.5), failed])[2:] == [
        "| B3 | matching | floor: a scan | ratio 100 | not run |",
        "| | | p99 ms < 2.0 | 1.5 (met) | — |",
    ]

"""The parts of the benchmarks that compute something and so can be wrong: percentiles,
the grouping F1, the open-loop load generator and its call sessions, the server-sent-
event reader, the order check of the sender and the target verdicts. Tested in
bench/tests."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


def percentile(values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile: the smallest value with at least ``pct`` % of the
    values at or below it (so p99 of 100 values is the 99th, never an interpolation
    below the slowest ones)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


@dataclass(frozen=True)
class PairScores:
    precision: float
    recall: float
    f1: float


def pairwise_f1(truth: Sequence[Hashable], predicted: Sequence[Hashable]) -> PairScores:
    """Pairwise precision, recall and F1 of a grouping: a pair of items is a true
    positive when both the truth and the prediction put them together.

    ``truth[i]`` and ``predicted[i]`` label item i; a ``None`` prediction (an item left
    ungrouped) is a group of its own. Counted from the contingency table, not the n²
    pairs."""
    if len(truth) != len(predicted):
        raise ValueError("truth and predicted must label the same items")
    labels = [("none", i) if p is None else ("group", p) for i, p in enumerate(predicted)]
    together = sum(_pairs(n) for n in Counter(zip(truth, labels, strict=True)).values())
    predicted_pairs = sum(_pairs(n) for n in Counter(labels).values())
    true_pairs = sum(_pairs(n) for n in Counter(truth).values())
    precision = together / predicted_pairs if predicted_pairs else 1.0
    recall = together / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PairScores(precision, recall, f1)


def same_partition(a: Sequence[Hashable], b: Sequence[Hashable]) -> bool:
    """Whether two labellings group the items the same way, whatever the labels."""
    if len(a) != len(b):
        return False
    forward: dict[Hashable, Hashable] = {}
    backward: dict[Hashable, Hashable] = {}
    for x, y in zip(a, b, strict=True):
        if forward.setdefault(x, y) != y or backward.setdefault(y, x) != x:
            return False
    return True


@dataclass(frozen=True)
class OrderCheck:
    first_tenth_below_median: bool
    spearman: float
    max_displacement: int


def nearest_first(ranks: Sequence[int]) -> OrderCheck:
    """How close to nearest first a sequence of sends was: ``ranks`` are the distance
    ranks (0 = nearest) in the order the sends started. The first tenth must all be
    nearer than the median; Spearman's rho against the ideal order and the largest
    distance of any send from its ideal place say how strict the order was."""
    n = len(ranks)
    if n < 2:
        return OrderCheck(True, 1.0, 0)
    ordered = sorted(ranks)
    median = ordered[(n - 1) // 2]
    first = ranks[: max(1, n // 10)]
    place = {rank: i for i, rank in enumerate(ordered)}
    positions = [place[r] for r in ranks]
    squared = sum((i - p) ** 2 for i, p in enumerate(positions))
    rho = 1 - 6 * squared / (n * (n * n - 1))
    return OrderCheck(
        first_tenth_below_median=max(first) <= median,
        spearman=rho,
        max_displacement=max(abs(i - p) for i, p in enumerate(positions)),
    )


@dataclass(frozen=True)
class Target:
    """One target of the issue and whether this run met it."""

    name: str
    value: float | int | bool | None
    op: str  # ">=", "<=", "<", ">", "=="
    threshold: float | int | bool

    @property
    def met(self) -> bool:
        if self.value is None or (isinstance(self.value, float) and math.isnan(self.value)):
            return False
        v, t = self.value, self.threshold
        return {
            ">=": v >= t,
            "<=": v <= t,
            "<": v < t,
            ">": v > t,
            "==": v == t,
        }[self.op]

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": f"{self.name} {self.op} {self.threshold}",
            "value": self.value,
            "met": self.met,
        }


def targets(*items: Target) -> list[dict[str, Any]]:
    return [t.as_dict() for t in items]


# Open loop


def schedule(rate: float, seconds: float) -> list[float]:
    """Send offsets (seconds from the start) at a fixed rate: request i at i / rate."""
    if rate <= 0 or seconds <= 0:
        return []
    return [i / rate for i in range(int(rate * seconds))]


def phases(parts: Iterable[tuple[int, float]]) -> list[float]:
    """Offsets for consecutive phases of (count, seconds), each at its own fixed rate."""
    offsets: list[float] = []
    start = 0.0
    for count, seconds in parts:
        offsets.extend(start + i * seconds / count for i in range(count))
        start += seconds
    return offsets


@dataclass
class OpenLoopResult:
    latencies: list[float] = field(default_factory=list)  # from the scheduled time
    statuses: Counter[int] = field(default_factory=Counter)
    sent_at: list[float] = field(default_factory=list)  # wall clock, per request
    failures: int = 0  # no answer at all (connection error, timeout)
    worst_lag: float = 0.0  # how late the generator started any request

    @property
    def non_2xx(self) -> int:
        return self.failures + sum(n for s, n in self.statuses.items() if not 200 <= s < 300)


def http_request(method: str, path: str, host: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "host"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response with a Content-Length body; its status."""
    status, _body = await read_response_with_body(reader)
    return status


async def read_response_with_body(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one HTTP/1.1 response with a Content-Length body; its status and body."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed")
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return status, (await reader.readexactly(length) if length else b"")


async def _on_schedule(
    offsets: Sequence[float], start: float, run: Callable[[int, float], Coroutine[Any, Any, None]]
) -> float:
    """Start ``run(i, due)`` at ``start + offsets[i]`` (loop time) whether or not the
    earlier ones have finished, then wait for all of them. How late the latest start was."""
    loop = asyncio.get_running_loop()
    worst_lag = 0.0
    pending: set[asyncio.Task[None]] = set()
    for i, offset in enumerate(offsets):
        due = start + offset
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        worst_lag = max(worst_lag, loop.time() - due)
        task = loop.create_task(run(i, due))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending)
    return worst_lag


async def open_loop(
    port: int,
    requests: Sequence[tuple[str, str, bytes, dict[str, str]]],
    offsets: Sequence[float],
    *,
    host: str = "127.0.0.1",
    timeout: float = 15.0,
    max_connections: int = 256,
    max_idle: float = 4.0,
) -> OpenLoopResult:
    """Send request i at ``offsets[i]`` seconds from now, whether or not earlier answers
    have come back (open loop: a slow server meets the same arrivals, not fewer), on
    keep-alive connections taken from a pool that grows when every connection is busy.
    Latency counts from the scheduled time, so a late start (or a wait for one of the
    ``max_connections``) is charged to the response; a request unanswered ``timeout``
    seconds after its time is a failure. ``requests`` are (method, path, body, headers).

    A connection idle for ``max_idle`` seconds is closed, not reused: the server closes
    idle keep-alive connections itself (uvicorn after 5 s), and a request written onto
    one it is closing is lost without an answer, which would count the client's race
    against the server. After a burst the pool is deep, and its oldest connections sit
    idle until the next one."""
    result = OpenLoopResult()
    slots = asyncio.Semaphore(max_connections)
    # (reader, writer, when it was last answered); the most recently used at the end.
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    wall_start = time.time() + 0.05

    async def connection() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while idle:
            reader, writer, used = idle.pop()
            if loop.time() - used < max_idle:
                return reader, writer
            writer.close()
        return await asyncio.open_connection("127.0.0.1", port)

    async def exchange(method: str, path: str, body: bytes, headers: dict[str, str]) -> int:
        reader, writer = await connection()
        try:
            writer.write(http_request(method, path, host, body, headers))
            status = await read_response(reader)
        except BaseException:
            writer.close()
            raise
        idle.append((reader, writer, loop.time()))
        return status

    async def one(i: int, due: float) -> None:
        try:
            async with asyncio.timeout_at(due + timeout), slots:
                status = await exchange(*requests[i % len(requests)])
        except (OSError, TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            result.failures += 1
            return
        result.latencies.append(loop.time() - due)
        result.statuses[status] += 1

    result.sent_at = [wall_start + offset for offset in offsets]
    result.worst_lag = await _on_schedule(offsets, start, one)
    for _reader, writer, _used in idle:
        writer.close()
    return result


# Sessions: a sequence of requests that each depend on the answer before (a phone call
# following the TwiML it is given).

Exchange = Callable[[str, str, bytes, dict[str, str]], Awaitable[tuple[int, bytes]]]
Session = Callable[[Exchange], Awaitable[None]]


class SessionBroken(Exception):
    """A session that cannot go on: an answer it did not expect."""


@dataclass
class SessionResult:
    # Each request from when it was sent; a session's first from its scheduled time.
    request_latencies: list[float] = field(default_factory=list)
    session_latencies: list[float] = field(default_factory=list)  # start to last answer
    statuses: Counter[int] = field(default_factory=Counter)
    completed: int = 0
    failures: int = 0  # sessions cut short: no answer in time, or an unexpected one
    worst_lag: float = 0.0

    @property
    def non_2xx(self) -> int:
        return sum(n for s, n in self.statuses.items() if not 200 <= s < 300)


async def _run_session(
    port: int, session: Session, due: float, *, host: str, timeout: float, result: SessionResult
) -> None:
    """One session on its own keep-alive connection; each request must be answered
    within ``timeout`` seconds of being sent (the first: of its scheduled time)."""
    loop = asyncio.get_running_loop()
    sent = due
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def exchange(
        method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        nonlocal sent, connection
        async with asyncio.timeout_at(sent + timeout):
            if connection is None:
                connection = await asyncio.open_connection("127.0.0.1", port)
            reader, writer = connection
            writer.write(http_request(method, path, host, body, headers))
            status, answer = await read_response_with_body(reader)
        now = loop.time()
        result.request_latencies.append(now - sent)
        result.statuses[status] += 1
        sent = now
        return status, answer

    try:
        await session(exchange)
    except (OSError, TimeoutError, ConnectionError, asyncio.IncompleteReadError, SessionBroken):
        result.failures += 1
    else:
        result.completed += 1
        result.session_latencies.append(loop.time() - due)
    finally:
        if connection is not None:
            connection[1].close()


async def open_loop_sessions(
    port: int,
    sessions: Sequence[Session],
    offsets: Sequence[float],
    *,
    host: str = "127.0.0.1",
    timeout: float = 15.0,
) -> SessionResult:
    """Start session i at ``offsets[i]`` seconds from now whether or not earlier ones
    have finished (open loop), each on its own connection."""
    result = SessionResult()

    async def one(i: int, due: float) -> None:
        session = sessions[i % len(sessions)]
        await _run_session(port, session, due, host=host, timeout=timeout, result=result)

    result.worst_lag = await _on_schedule(offsets, asyncio.get_running_loop().time() + 0.05, one)
    return result


async def closed_loop_sessions(
    port: int,
    session_for: Callable[[int], Session],
    *,
    concurrency: int,
    seconds: float,
    host: str = "127.0.0.1",
    timeout: float = 15.0,
) -> SessionResult:
    """``concurrency`` clients, each starting its next session (``session_for(i)``, i
    counting across clients) as soon as its last one ended, for ``seconds``."""
    result = SessionResult()
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + seconds
    counter = iter(range(10**9))

    async def client() -> None:
        while loop.time() < stop_at:
            session = session_for(next(counter))
            await _run_session(
                port, session, loop.time(), host=host, timeout=timeout, result=result
            )

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return result


# Server-sent events


@dataclass(frozen=True)
class Event:
    id: str | None
    event: str
    data: str


class SSEParser:
    """Turns the text of an event stream into events (the WHATWG rules we rely on:
    fields per line, a blank line ends an event, comments start with a colon)."""

    def __init__(self) -> None:
        self.buffer = ""
        self.fields: dict[str, list[str]] = {}

    def feed(self, text: str) -> list[Event]:
        self.buffer += text
        events = []
        while True:
            line, sep, rest = self.buffer.partition("\n")
            if not sep:
                break
            self.buffer = rest
            line = line.removesuffix("\r")
            if not line:
                if "data" in self.fields or "id" in self.fields:
                    events.append(
                        Event(
                            id=self.fields.get("id", [None])[-1],
                            event=self.fields.get("event", ["message"])[-1],
                            data="\n".join(self.fields.get("data", [])),
                        )
                    )
                self.fields = {}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            self.fields.setdefault(name, []).append(value.removeprefix(" "))
        return events


async def read_chunk(reader: asyncio.StreamReader) -> bytes:
    """One chunk of a chunked HTTP body (b"" at the last chunk)."""
    size_line = await reader.readline()
    if not size_line:
        raise ConnectionError("stream closed")
    size = int(size_line.split(b";")[0].strip(), 16)
    data = await reader.readexactly(size + 2)
    return data[:-2]

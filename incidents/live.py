"""Server-sent events for the dispatcher console.

One ``Hub`` per web process (per event loop) reads new ConsoleEvent rows once and
renders each for the languages its clients use, however many dispatchers are
connected. It wakes on:

- ``wake()``, called after a commit in the same process;
- PostgreSQL NOTIFY, which ``console.publish`` sends inside the writing transaction, so
  other web processes and the task workers reach it at commit;
- a short poll, the fallback on SQLite (where the task worker is another process) and
  whenever the LISTEN connection is down.

A client's stream resumes from ``Last-Event-ID`` (sent by EventSource after a
reconnect) or from the event id the page was rendered at, so nothing between the page
load and the stream, or during a reconnect, is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection

from incidents import console
from incidents.models import ConsoleEvent

logger = logging.getLogger(__name__)

BUFFER_SIZE = 2000
REPLAY_LIMIT = 500
KEEPALIVE_SECONDS = 15.0
LISTEN_POLL_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Envelope:
    id: int
    kind: str
    object_uuid: str


@dataclass
class Hub:
    loop: asyncio.AbstractEventLoop
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    published: asyncio.Condition = field(default_factory=asyncio.Condition)
    buffer: deque[Envelope] = field(default_factory=lambda: deque(maxlen=BUFFER_SIZE))
    # Rendered payloads: event id -> language -> JSON text.
    rendered: dict[int, dict[str, str]] = field(default_factory=dict)
    languages: Counter[str] = field(default_factory=Counter)
    latest_id: int = 0
    started: bool = False
    listening: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="console-hub")
    )

    async def _db(self, func: Any, *args: Any) -> Any:
        return await sync_to_async(func, thread_sensitive=False, executor=self.executor)(*args)

    async def start(self) -> None:
        if self.started:
            return
        self.started = True
        self.latest_id = await self._db(_latest_event_id)
        self.tasks.append(self.loop.create_task(self._poll()))
        if connection.vendor == "postgresql":
            self.tasks.append(self.loop.create_task(self._listen()))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()
        self.started = False
        with contextlib.suppress(Exception):
            await self._db(connection.close)
        self.executor.shutdown(wait=False)

    async def _poll(self) -> None:
        while True:
            timeout = LISTEN_POLL_SECONDS if self.listening else settings.RR_CONSOLE_POLL_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout=timeout)
            self.changed.clear()
            try:
                await self._fetch()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("The console hub could not read new events; retrying.")
                await asyncio.sleep(1.0)

    async def _fetch(self) -> None:
        languages = sorted(lang for lang, count in self.languages.items() if count > 0)
        envelopes, payloads = await self._db(_read_and_render, self.latest_id, languages)
        if not envelopes:
            return
        for envelope in envelopes:
            self.buffer.append(envelope)
            self.rendered[envelope.id] = payloads.get(envelope.id, {})
        oldest = self.buffer[0].id
        for stale in [event_id for event_id in self.rendered if event_id < oldest]:
            del self.rendered[stale]
        self.latest_id = envelopes[-1].id
        async with self.published:
            self.published.notify_all()

    async def _listen(self) -> None:
        import psycopg

        params = _libpq_params()
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(**params, autocommit=True)
                async with conn:
                    # A constant channel name; LISTEN takes no parameters.
                    # nosemgrep: django-raw-sql-formatted
                    await conn.execute(f"LISTEN {console.NOTIFY_CHANNEL}")
                    self.listening = True
                    self.changed.set()  # catch up on anything missed while connecting
                    async for _notice in conn.notifies():
                        self.changed.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("Console LISTEN connection lost; polling until it is back.")
            finally:
                self.listening = False
            await asyncio.sleep(1.0)

    def buffered_after(self, event_id: int) -> list[Envelope] | None:
        """Events after ``event_id`` from memory, or None if the buffer no longer reaches
        back that far."""
        if self.buffer and event_id < self.buffer[0].id - 1:
            return None
        if not self.buffer and event_id < self.latest_id:
            return None
        return [e for e in self.buffer if e.id > event_id]

    async def payloads(self, envelopes: list[Envelope], language: str) -> dict[int, str]:
        missing = [e for e in envelopes if language not in self.rendered.get(e.id, {})]
        if missing:
            rendered = await self._db(_render, missing, language)
            for event_id, text in rendered.items():
                self.rendered.setdefault(event_id, {})[language] = text
        return {e.id: self.rendered.get(e.id, {}).get(language, "") for e in envelopes}


_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}
_hubs_lock = threading.Lock()


def hub_for_loop() -> Hub:
    loop = asyncio.get_running_loop()
    with _hubs_lock:
        hub = _hubs.get(loop)
        if hub is None:
            hub = _hubs[loop] = Hub(loop=loop)
    return hub


async def shutdown() -> None:
    """Stop this event loop's hub (server shutdown): its tasks, thread and connections."""
    loop = asyncio.get_running_loop()
    with _hubs_lock:
        hub = _hubs.pop(loop, None)
    if hub is not None:
        await hub.stop()


def wake() -> None:
    """Tell every hub in this process to look for new events now (thread-safe)."""
    with _hubs_lock:
        hubs = list(_hubs.values())
    for hub in hubs:
        if not hub.loop.is_closed():
            hub.loop.call_soon_threadsafe(hub.changed.set)


def format_event(envelope: Envelope, payload: str) -> str:
    return f"id: {envelope.id}\nevent: {envelope.kind}\ndata: {payload}\n\n"


async def stream(
    *, after_id: int | None, language: str, lifetime: float | None = None
) -> AsyncIterator[str]:
    """The event stream for one dispatcher's console.

    It ends after ``lifetime`` seconds; EventSource then reconnects with Last-Event-ID,
    which checks the dispatcher's session and permissions again (a logged-out or
    disabled account stops receiving within that time) and loses nothing.
    """
    hub = hub_for_loop()
    hub.languages[language] += 1
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + (settings.RR_CONSOLE_STREAM_SECONDS if lifetime is None else lifetime)
    try:
        await hub.start()
        cursor = hub.latest_id if after_id is None else after_id
        yield "retry: 2000\n\n"
        while loop.time() < ends_at:
            envelopes = hub.buffered_after(cursor)
            if envelopes is None:
                envelopes = await hub._db(_read_after, cursor, REPLAY_LIMIT + 1)
                if len(envelopes) > REPLAY_LIMIT:
                    # Too far behind to replay: the page reloads its current state.
                    yield f"id: {hub.latest_id}\nevent: reload\ndata: {{}}\n\n"
                    cursor = hub.latest_id
                    continue
            if envelopes:
                payloads = await hub.payloads(envelopes, language)
                for envelope in envelopes:
                    yield format_event(envelope, payloads[envelope.id])
                cursor = envelopes[-1].id
                continue
            wait = min(KEEPALIVE_SECONDS, max(0.0, ends_at - loop.time()))
            async with hub.published:
                try:
                    await asyncio.wait_for(hub.published.wait(), timeout=wait)
                except TimeoutError:
                    yield ": keepalive\n\n"
    finally:
        hub.languages[language] -= 1


# Database side, run on the hub's own thread.


def _latest_event_id() -> int:
    close_old_connections()
    return console.latest_event_id()


def _read_after(event_id: int, limit: int) -> list[Envelope]:
    close_old_connections()
    rows = ConsoleEvent.objects.filter(id__gt=event_id).order_by("id")[:limit]
    return [Envelope(row.id, row.kind, str(row.object_uuid)) for row in rows]


def _read_and_render(
    event_id: int, languages: Iterable[str]
) -> tuple[list[Envelope], dict[int, dict[str, str]]]:
    envelopes = _read_after(event_id, BUFFER_SIZE)
    payloads: dict[int, dict[str, str]] = {e.id: {} for e in envelopes}
    for language in languages:
        for event_id_, text in _render(envelopes, language).items():
            payloads[event_id_][language] = text
    return envelopes, payloads


def _render(envelopes: list[Envelope], language: str) -> dict[int, str]:
    from incidents.selectors import console_payloads

    if not envelopes:
        return {}
    states = console_payloads(
        [(e.kind, e.object_uuid) for e in envelopes],
        language=language,
    )
    return {e.id: json.dumps(states[(e.kind, e.object_uuid)]) for e in envelopes}


def _libpq_params() -> dict[str, Any]:
    params = connection.get_connection_params()
    allowed = {"dbname", "user", "password", "host", "port", "sslmode", "sslrootcert", "options"}
    return {key: value for key, value in params.items() if key in allowed}

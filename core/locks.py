"""Serialising short critical sections across processes."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

from django.db import connection, transaction

P = ParamSpec("P")
R = TypeVar("R")


def serialize(name: str) -> None:
    """Hold a database-wide lock named ``name`` until the current transaction ends.

    PostgreSQL takes a transaction-level advisory lock, once per transaction (a report's
    grouping asks for the incidents lock five times; each ask was a round trip). SQLite
    needs nothing: every transaction there begins IMMEDIATE (see settings), which
    already admits one writer.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("serialize() must be called inside transaction.atomic().")
    if connection.vendor == "postgresql" and first_time_in_transaction(f"lock:{name}"):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key(name)])


class _TransactionMark:
    """An after-commit hook that does nothing: that it is among the connection's hooks
    says ``key`` was done in this transaction. Django drops the hooks of a savepoint
    rolled back and all of them when the transaction ends, just as PostgreSQL drops the
    locks and notifications they stand for."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self) -> None:
        return None


def first_time_in_transaction(key: str) -> bool:
    """True the first time it is asked about ``key`` in the current transaction (and
    again after a savepoint that asked is rolled back); False after that."""
    current = transaction.get_connection()
    if not current.in_atomic_block:
        raise RuntimeError("first_time_in_transaction() must be called inside atomic().")
    for _savepoints, hook, *_robust in current.run_on_commit:
        if isinstance(hook, _TransactionMark) and hook.key == key:
            return False
    transaction.on_commit(_TransactionMark(key))
    return True


def atomic_serialized(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run the function in a transaction that takes the lock ``name`` before anything
    else, so every writer takes its locks in the same order and none can deadlock."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with transaction.atomic():
                serialize(name)
                return func(*args, **kwargs)

        return wrapper

    return decorate


# Re-entrant: work run after a commit (a task run at once, a listener) may write again
# while the thread still holds the lock around the transaction that just committed.
_sqlite_writer = threading.RLock()


@contextlib.contextmanager
def one_local_writer() -> Iterator[None]:
    """On SQLite, let one thread of this process write at a time.

    SQLite admits one writer; the others wait in its busy handler, which sleeps in
    growing steps (up to 100 ms), so under a burst some requests wait seconds. Queuing
    on a lock in the process hands the database over as soon as it is free. On
    PostgreSQL this does nothing.
    """
    if connection.vendor != "sqlite":
        yield
        return
    with _sqlite_writer:
        yield


@contextlib.contextmanager
def exclusive(name: str, *, ttl_seconds: float) -> Iterator[bool]:
    """Try to become the only holder of ``name`` across processes; yields whether it
    worked. Never waits.

    PostgreSQL: a session-level advisory lock (released at the end, or if the
    connection dies). Otherwise a cache entry that expires after ``ttl_seconds``: exact
    across processes with Redis, per process with the local memory cache.
    """
    if connection.vendor == "postgresql":
        key = _lock_key(name)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            acquired = bool(cursor.fetchone()[0])
        try:
            yield acquired
        finally:
            if acquired:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        return
    from django.core.cache import cache

    token = uuid.uuid4().hex
    cache_key = f"exclusive:{name}"
    acquired = bool(cache.add(cache_key, token, timeout=max(1, int(ttl_seconds))))
    try:
        yield acquired
    finally:
        if acquired and cache.get(cache_key) == token:
            cache.delete(cache_key)


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)

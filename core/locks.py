"""Serialising short critical sections across processes."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

from django.db import connection, transaction

P = ParamSpec("P")
R = TypeVar("R")


def serialize(name: str) -> None:
    """Hold a database-wide lock named ``name`` until the current transaction ends.

    PostgreSQL takes a transaction-level advisory lock. SQLite needs nothing: every
    transaction there begins IMMEDIATE (see settings), which already admits one writer.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("serialize() must be called inside transaction.atomic().")
    if connection.vendor == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


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


_sqlite_writer = threading.Lock()


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

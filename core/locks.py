"""Serialising short critical sections across processes."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
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

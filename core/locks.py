"""Serialising short critical sections across processes."""

from __future__ import annotations

import hashlib

from django.db import connection, transaction


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

"""Fixed-window rate limits counted in the cache (Redis when configured).

Keys are keyed hashes that already include the window, and entries expire with it, so
nothing outlives the window it counts.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache

logger = logging.getLogger(__name__)


# While the shared store (Redis) is down, counts are kept in this process instead: each
# process then allows the limit, which still bounds a flood where allowing everything
# would not.
local_counters = LocMemCache("rr-local-counters", {"MAX_ENTRIES": 50_000})


def count_one(store: BaseCache, key: str, seconds: int) -> int:
    """Add one to the counter ``key`` in ``store`` (created for ``seconds``)."""
    if store.add(key, 1, timeout=seconds):
        return 1
    try:
        return int(store.incr(key))
    except ValueError:
        # The entry expired between add() and incr(): the window's first event.
        store.add(key, 1, timeout=seconds)
        return 1


@dataclass(frozen=True, slots=True)
class Window:
    name: str
    seconds: int

    def current(self, now: float | None = None) -> str:
        moment = time.time() if now is None else now
        return f"{self.name}:{int(moment // self.seconds)}"


def hit(key: str, *, limit: int, window: Window, fail_open: bool = True) -> bool:
    """Count one event under ``key``; True while the count stays within ``limit``.

    When the counter store is down: intake counts in this process (losing a report is
    worse than admitting a few extra); ``fail_open=False`` refuses instead, for requests
    that cost money or bother someone else (a code texted to a number)."""
    cache_key = f"ratelimit:{key}"
    try:
        count = count_one(cache, cache_key, window.seconds)
    except Exception:
        if not fail_open:
            logger.warning("Rate-limit store unavailable; refusing the request.")
            return False
        logger.warning("Rate-limit store unavailable; counting in this process.")
        count = count_one(local_counters, cache_key, window.seconds)
    return count <= limit

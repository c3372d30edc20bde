"""Fixed-window rate limits counted in the cache (Redis when configured).

Keys are keyed hashes that already include the window, and entries expire with it, so
nothing outlives the window it counts.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.core.cache import cache

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Window:
    name: str
    seconds: int

    def current(self, now: float | None = None) -> str:
        moment = time.time() if now is None else now
        return f"{self.name}:{int(moment // self.seconds)}"


def hit(key: str, *, limit: int, window: Window, fail_open: bool = True) -> bool:
    """Count one event under ``key``; True while the count stays within ``limit``.

    When the counter store is down: intake fails open (losing a report is worse than
    admitting a few extra); ``fail_open=False`` refuses instead, for requests that cost
    money or bother someone else (a code texted to a number)."""
    cache_key = f"ratelimit:{key}"
    try:
        if cache.add(cache_key, 1, timeout=window.seconds):
            return limit >= 1
        try:
            count = cache.incr(cache_key)
        except ValueError:
            # The entry expired between add() and incr(): the window's first event.
            cache.add(cache_key, 1, timeout=window.seconds)
            count = 1
    except Exception:
        logger.warning(
            "Rate-limit store unavailable; %s the request.", "allowing" if fail_open else "refusing"
        )
        return fail_open
    return count <= limit

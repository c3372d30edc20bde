"""Rate limits while the shared counter store (Redis) is down."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache

from core import ratelimit

WINDOW = ratelimit.Window("test", 60)


@pytest.fixture
def store_down(monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("redis down")

    for method in ("add", "incr"):
        monkeypatch.setattr(cache, method, down)


def test_counts_move_to_the_process_and_the_limit_still_holds(store_down: None) -> None:
    allowed = [ratelimit.hit("k", limit=3, window=WINDOW) for _ in range(5)]
    assert allowed == [True, True, True, False, False]


def test_a_limit_that_must_not_fail_open_refuses(store_down: None) -> None:
    assert not ratelimit.hit("k", limit=3, window=WINDOW, fail_open=False)


def test_with_the_store_up_nothing_is_counted_locally() -> None:
    assert ratelimit.hit("k", limit=1, window=WINDOW)
    assert not ratelimit.hit("k", limit=1, window=WINDOW)
    assert ratelimit.local_counters.get("ratelimit:k") is None

from __future__ import annotations

import logging

import pytest

from core.logging import ScrubFilter, scrub


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("from +15105550123 ok", "5105550123"),
        ("call (510) 555-0123", "555-0123"),
        ("client 203.0.113.7 said", "203.0.113.7"),
        ("client 2001:db8::1 said", "2001:db8::1"),
        ("Body=la+migra+esta+aqui&From=%2B1510", "la+migra"),
        ("{'Body': 'agents at school', 'To': '+1510'}", "agents at school"),
        ("mail me at someone@example.org", "someone@example.org"),
    ],
)
def test_scrub_hides_personal_data(text: str, hidden: str) -> None:
    assert hidden not in scrub(text)


def test_the_filter_scrubs_arguments_and_exceptions() -> None:
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "sender %s", ("+15105550123",), None
    )
    try:
        raise ValueError("bad number +15105550123")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    ScrubFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert "5105550123" not in formatted
    assert "[phone]" in formatted

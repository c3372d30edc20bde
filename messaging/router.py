"""Where an inbound message goes: a keyword handler, or the report handler.

Messaging does not decide what a report means; the intake app registers the handler
for everything that is not a keyword (see intake/apps.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from messaging import keywords

if TYPE_CHECKING:
    from messaging.models import InboundMessage

# Gets the message (not yet inserted) inside the webhook's transaction and the sender's
# last known language, sets message.kind and message.language, queues any work with
# on_commit and returns the reply text.
MessageHandler = Callable[["InboundMessage", str | None], str]

# The answer to a message (body, number of media, the sender's hash) when it goes to the
# spool: without the database, which may be unreachable.
OfflineReply = Callable[[str, int, str], str]

_report_handler: MessageHandler | None = None
_offline_reply: OfflineReply | None = None


def set_report_handler(handler: MessageHandler) -> None:
    global _report_handler  # noqa: PLW0603 - one process-wide route, set once at start-up
    _report_handler = handler


def set_offline_reply(reply: OfflineReply) -> None:
    global _offline_reply  # noqa: PLW0603 - one process-wide route, set once at start-up
    _offline_reply = reply


def offline_reply(body: str, media_count: int, sender_hash: str = "") -> str:
    """What to answer without the database: nothing to a keyword (its handler reads and
    writes the database; it answers once the message is stored), and the report
    handler's answer to anything else."""
    if keywords.match(body) is not None or _offline_reply is None:
        return ""
    return _offline_reply(body, media_count, sender_hash)


def route(message: InboundMessage, *, known_language: str | None) -> str:
    from messaging.models import InboundKind

    found = keywords.match(message.body)
    if found is not None:
        fallback = message.language
        message.kind = InboundKind.KEYWORD
        message.keyword = found.keyword.word
        message.language = found.keyword.language or message.language
        reply = found.keyword.handler(
            message, found.keyword.word, found.arguments, message.language
        )
        if reply is not None:
            return reply
        message.kind, message.keyword, message.language = InboundKind.REPORT, "", fallback
    if _report_handler is None:
        raise RuntimeError("No report handler is registered for inbound messages.")
    return _report_handler(message, known_language)

"""A copy of every audit event, outside the database, after it commits.

``RR_AUDIT_SINK`` names where the copies go:

- ``""`` (the default): nowhere;
- ``jsonl:/path/to/audit.jsonl``: one JSON object per line, appended (point it at a
  file another user owns and this one may only append to, or that is shipped off the
  machine, e.g. by journald or a log forwarder);
- ``syslog`` or ``syslog:/dev/log`` or ``syslog:host:514``: one JSON message per event
  to syslog (facility ``authpriv``), for a remote collector the server cannot rewrite;
- ``python:package.module.Class``: any class with ``emit(event: dict) -> None``.

An event is sent after its transaction commits (a rolled-back action sends nothing),
once, from the process that wrote it: if that process dies between the commit and the
send, the copy is missing while the row exists, which comparing the two shows. A sink
that fails is logged (no content) and does not undo the action.

What is sent has no personal content: the event's id, time, action, the actor's user
id, the target's type and id, and the detail's numbers, flags and identifier-like
strings (anything else is replaced by ``"<withheld>"``).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import threading
from functools import cache
from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

IDENTIFIER = re.compile(r"^[A-Za-z0-9_.:/-]{0,64}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DIGIT_RUN = re.compile(r"\d{7,}")  # a phone number, an A-number
WITHHELD = "<withheld>"


class AuditSink(Protocol):
    def emit(self, event: dict[str, Any]) -> None: ...


class JsonLinesSink:
    def __init__(self, path: str) -> None:
        if not path:
            raise ImproperlyConfigured("RR_AUDIT_SINK=jsonl: needs a file path.")
        self.path = path
        self.lock = threading.Lock()

    def emit(self, event: dict[str, Any]) -> None:
        line = (json.dumps(event, sort_keys=True, separators=(",", ":")) + "\n").encode()
        # O_APPEND: each line lands whole at the end, also with several processes.
        with self.lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)


class SyslogSink:
    def __init__(self, address: str) -> None:
        target: str | tuple[str, int]
        if not address:
            target = "/dev/log"
        elif address.startswith("/"):
            target = address
        else:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit():
                raise ImproperlyConfigured("RR_AUDIT_SINK=syslog:host:port needs a numeric port.")
            target = (host, int(port))
        self.handler = logging.handlers.SysLogHandler(
            address=target, facility=logging.handlers.SysLogHandler.LOG_AUTHPRIV
        )
        self.handler.ident = "rapidresponse-audit: "

    def emit(self, event: dict[str, Any]) -> None:
        record = logging.LogRecord(
            "rapidresponse.audit", logging.INFO, __file__, 0, json.dumps(event), None, None
        )
        self.handler.emit(record)


def parse(spec: str) -> AuditSink | None:
    kind, _, rest = spec.strip().partition(":")
    if not kind:
        return None
    if kind == "jsonl":
        return JsonLinesSink(rest)
    if kind == "syslog":
        return SyslogSink(rest)
    if kind == "python":
        sink: AuditSink = import_string(rest)()
        return sink
    raise ImproperlyConfigured(
        "RR_AUDIT_SINK is jsonl:<path>, syslog[:<address>] or python:<dotted class path>."
    )


@cache
def configured() -> AuditSink | None:
    return parse(getattr(settings, "RR_AUDIT_SINK", ""))


def _clean(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str) and (
        UUID.match(value) or (IDENTIFIER.match(value) and not DIGIT_RUN.search(value))
    ):
        return value
    return WITHHELD


def payload(event: Any) -> dict[str, Any]:
    """What leaves the database for one event: identifiers and counts only."""
    detail = event.detail if isinstance(event.detail, dict) else {}
    return {
        "id": event.pk,
        "at": event.at.isoformat(),
        "action": str(event.action),
        "actor_id": event.actor_id,
        "target_type": event.target_type,
        "target_id": _clean(event.target_id),
        "detail": {str(key): _clean(value) for key, value in detail.items()},
    }


def deliver(event: dict[str, Any]) -> None:
    sink = configured()
    if sink is None:
        return
    try:
        sink.emit(event)
    except Exception:  # a sink that fails must not turn a committed action into an error
        logger.exception("The audit sink refused event %s.", event.get("id"))


def on_audit_event_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if not created or configured() is None:
        return
    event = payload(instance)
    transaction.on_commit(lambda: deliver(event), using=kwargs.get("using"), robust=True)

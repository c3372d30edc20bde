"""A logging filter that removes personal data before any handler writes a line.

Code never logs phone numbers, message bodies, names or client addresses on purpose;
this filter is the second line of defence for what slips through (exception messages,
third-party libraries). It rewrites the final message and drops request objects.
"""

from __future__ import annotations

import logging
import re

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # E.164 and common national formats: +15105550123, (510) 555-0123, 510.555.0123
    (re.compile(r"\+\d[\d\s().-]{6,}\d"), "[phone]"),
    (re.compile(r"(?<!\w)\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?!\w)"), "[phone]"),
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "[email]"),
    # IPv4 and IPv6 addresses
    (re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])"), "[ip]"),
    # IPv6: hex groups with "::" or at least three colons (so clock times survive)
    (
        re.compile(
            r"(?<![\w:])(?:(?:[0-9a-fA-F]{1,4}:)*[0-9a-fA-F]{0,4}::[0-9a-fA-F:]*|(?:[0-9a-fA-F]{1,4}:){3,7}[0-9a-fA-F]{1,4})"
            r"(?![\w:])"
        ),
        "[ip]",
    ),
    # Webhook parameters that carry content, if a library dumps a form or a URL
    (
        re.compile(r"(?i)\b(Body|From|To|Caller|Called|MediaUrl\d*|name)=([^&\s,}]*)"),
        r"\1=[redacted]",
    ),
    (
        re.compile(r"(?i)(['\"](?:Body|From|To|Caller|Called|name)['\"]\s*:\s*)(['\"]).*?\2"),
        r"\1\2[redacted]\2",
    ),
)


def scrub(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = scrub(message)
        record.args = None
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        # django.request attaches the request; handlers must never see its META.
        if hasattr(record, "request"):
            record.request = None
        return True

"""SMS providers behind one small interface.

``console`` delivers instantly to the test phone (development and demos, offline);
``twilio`` sends through the Twilio API. Only this package imports ``twilio``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from django.conf import settings


@dataclass(frozen=True)
class Sent:
    provider_sid: str


class SendError(Exception):
    """The provider refused or failed a send.

    ``retry``: worth trying again later (rate limit, outage). ``opted_out``: the
    recipient has blocked us at the carrier (Twilio 21610).
    """

    def __init__(self, message: str, *, code: str = "", retry: bool, opted_out: bool = False):
        super().__init__(message)
        self.code = code
        self.retry = retry
        self.opted_out = opted_out


class SmsProvider(Protocol):
    name: str

    def send(self, *, to: str, body: str) -> Sent: ...


def active_provider() -> SmsProvider:
    if settings.RR_SMS_PROVIDER == "twilio":
        from messaging.providers.twilio.client import TwilioProvider

        return TwilioProvider()
    from messaging.providers.console.provider import ConsoleProvider

    return ConsoleProvider()

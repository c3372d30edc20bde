"""SMS and voice providers behind small interfaces.

``console`` delivers instantly to the test phone (development and demos, offline);
``twilio`` sends through the Twilio API. Only this package imports ``twilio``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from django.conf import settings

if TYPE_CHECKING:
    from calls.script import Step


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


class ProviderUnavailable(Exception):
    """The provider could not answer a question (not a send); ask again later."""


class SmsProvider(Protocol):
    name: str

    def send(self, *, to: str, body: str, valid_until: datetime | None = None) -> Sent: ...

    def find_sent(self, *, to: str, body: str, since: datetime) -> Sent | None:
        """A message with this body that the provider accepted for ``to`` since
        ``since``, if any: how a send cut short by a crash is told apart from one that
        never happened. Raises ProviderUnavailable when it cannot tell."""
        ...

    def delete_message(self, *, sid: str) -> None:
        """Delete the provider's copy of a message (either direction) once we are done
        with it; one already gone counts as deleted. Raises ProviderUnavailable."""
        ...


def active_provider() -> SmsProvider:
    if settings.RR_SMS_PROVIDER == "twilio":
        from messaging.providers.twilio.client import TwilioProvider

        return TwilioProvider()
    from messaging.providers.console.provider import ConsoleProvider

    return ConsoleProvider()


class VoiceProvider(Protocol):
    """What the hotline asks of the telephone network beyond answering webhooks."""

    name: str

    def ring(self, *, to: str, answer: Step, status: Step, timeout_seconds: int) -> str:
        """Call a dispatcher's phone; ``answer`` runs when it picks up, ``status``
        hears how it ends. Returns the provider's id of the new call."""
        ...

    def hang_up(self, *, sid: str, picked_up: bool) -> None: ...

    def delete_queue(self, *, sid: str) -> None:
        """Remove a call's own queue once the call ended (providers keep idle queues)."""
        ...

    def fetch_recording(self, *, reference: str) -> tuple[bytes, str]:
        """The audio of a voicemail and its content type."""
        ...

    def delete_recording(self, *, reference: str) -> None:
        """Delete a voicemail at the provider; one already gone counts as deleted.
        Raises ProviderUnavailable."""
        ...

    def delete_call(self, *, sid: str) -> None:
        """Delete the provider's record of an ended call (it names the caller); one
        already gone counts as deleted. Raises ProviderUnavailable."""
        ...


def active_voice_provider() -> VoiceProvider:
    if settings.RR_SMS_PROVIDER == "twilio":
        from messaging.providers.twilio.voice import TwilioVoice

        return TwilioVoice()
    from messaging.providers.console.voice import ConsoleVoice

    return ConsoleVoice()

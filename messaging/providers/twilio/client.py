"""Sending through the Twilio Messages API with the official client."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from messaging.providers import ProviderUnavailable, SendError, Sent

TWILIO_API = "https://api.twilio.com"
OPTED_OUT = 21610  # "Attempt to send to unsubscribed recipient"
PERMANENT = {21211, 21214, 21408, 21610, 21612, 21614}  # invalid, unreachable, blocked


# The twilio package ships no type information.
class _BaseUrlHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """Sends the client's requests to TWILIO_API_BASE instead of api.twilio.com, so
    tests and benchmarks run the real client against a local stand-in."""

    def __init__(self, base: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base = base.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.startswith(TWILIO_API):
            url = self.base + url[len(TWILIO_API) :]
        return super().request(method, url, *args, **kwargs)


def delete_resource(resource: Any, what: str) -> None:
    """Delete one of Twilio's copies (a message, a call, a recording, a queue); one
    already gone (404) is fine, anything else is asked again later."""
    try:
        resource.delete()
    except TwilioRestException as exc:
        if exc.status != 404:
            raise ProviderUnavailable(f"Twilio refused to delete {what} ({exc.status}).") from exc
    except OSError as exc:
        raise ProviderUnavailable("Twilio could not be reached.") from exc


def make_client() -> Client:
    http_client = (
        _BaseUrlHttpClient(settings.TWILIO_API_BASE, timeout=10)
        if settings.TWILIO_API_BASE
        else TwilioHttpClient(timeout=10)
    )
    return Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, http_client=http_client)


class TwilioProvider:
    name = "twilio"

    def __init__(self) -> None:
        self.client = make_client()

    def send(self, *, to: str, body: str, valid_until: datetime | None = None) -> Sent:
        sender = settings.RR_SMS_FROM
        params: dict[str, Any] = {
            "to": to,
            "body": body,
            "status_callback": f"{settings.RR_PUBLIC_URL}/hooks/twilio/status",
        }
        if valid_until is not None:
            # Twilio drops a message still queued at its end after this many seconds
            # (1 to 36,000), so a stale alert expires instead of arriving hours late.
            seconds = int((valid_until - timezone.now()).total_seconds())
            params["validity_period"] = max(1, min(36_000, seconds))
        if sender.startswith("MG"):
            params["messaging_service_sid"] = sender
        else:
            params["from_"] = sender
        try:
            message = self.client.messages.create(**params)
        except TwilioRestException as exc:
            code = int(exc.code or 0)
            raise SendError(
                f"Twilio refused the message ({exc.status}, {code}).",
                code=str(code or exc.status),
                retry=exc.status == 429 or exc.status >= 500,
                opted_out=code == OPTED_OUT,
            ) from exc
        except OSError as exc:
            raise SendError("Twilio could not be reached.", retry=True) from exc
        return Sent(provider_sid=str(message.sid))

    def find_sent(self, *, to: str, body: str, since: datetime) -> Sent | None:
        # The Messages API has no idempotency key: look for what it accepted. Listing
        # is newest first; a crash leaves at most one message per sender unaccounted.
        # Twilio's creation times are to the second.
        earliest = since - timedelta(seconds=1)
        try:
            recent = self.client.messages.list(to=to, limit=50)
        except TwilioRestException as exc:
            raise ProviderUnavailable(f"Twilio refused the lookup ({exc.status}).") from exc
        except OSError as exc:
            raise ProviderUnavailable("Twilio could not be reached.") from exc
        for message in recent:
            created = message.date_created
            if message.body == body and created is not None and created >= earliest:
                return Sent(provider_sid=str(message.sid))
        return None

    def delete_message(self, *, sid: str) -> None:
        delete_resource(self.client.messages(sid), "a message")

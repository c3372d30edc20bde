"""Sending through the Twilio Messages API with the official client."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from messaging.providers import SendError, Sent

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

    def send(self, *, to: str, body: str) -> Sent:
        sender = settings.RR_SMS_FROM
        params: dict[str, Any] = {
            "to": to,
            "body": body,
            "status_callback": f"{settings.RR_PUBLIC_URL}/hooks/twilio/status",
        }
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

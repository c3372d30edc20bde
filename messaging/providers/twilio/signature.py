"""Checking that a webhook really comes from Twilio.

The signature covers the full URL Twilio requested. Behind a TLS-terminating proxy the
app sees a different scheme and host, so the URL is rebuilt from RR_PUBLIC_URL plus the
path and query the app received. With no auth token configured, nothing validates.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from twilio.request_validator import RequestValidator

SIGNATURE_HEADER = "X-Twilio-Signature"


def public_url(request: HttpRequest) -> str:
    return f"{settings.RR_PUBLIC_URL}{request.get_full_path()}"


def is_valid(request: HttpRequest) -> bool:
    token = settings.TWILIO_AUTH_TOKEN
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not token or not signature:
        return False
    return bool(RequestValidator(token).validate(public_url(request), request.POST, signature))

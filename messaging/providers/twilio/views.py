"""Twilio's SMS webhook: authenticate, store once, answer with TwiML."""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.twiml.messaging_response import MessagingResponse

from messaging import spool
from messaging.outbox import record_status
from messaging.providers.twilio import signature

logger = logging.getLogger(__name__)

PROVIDER = "twilio"
MAX_MEDIA = 10


def twiml(reply: str) -> HttpResponse:
    response = MessagingResponse()
    if reply:
        response.message(reply)
    return HttpResponse(str(response), content_type="application/xml")


def _plain(status: int, text: str) -> HttpResponse:
    return HttpResponse(text + "\n", status=status, content_type="text/plain")


# Twilio cannot send a CSRF token; the request signature is what authenticates it.
# nosemgrep: django-csrf-exempt - Twilio signs it; the signature is checked first
@csrf_exempt
@require_POST
def status_callback(request: HttpRequest) -> HttpResponse:
    """Delivery status of a message we sent: validated, idempotent, forward only."""
    if not signature.is_valid(request):
        logger.warning("Rejected a status callback with a missing or invalid signature.")
        return _plain(403, "Invalid signature.")
    sid = request.POST.get("MessageSid") or request.POST.get("SmsSid") or ""
    status = request.POST.get("MessageStatus") or request.POST.get("SmsStatus") or ""
    if not sid or not status or len(sid) > 64:
        return _plain(400, "MessageSid and MessageStatus are required.")
    record_status(
        provider_sid=sid, status=status, error_code=request.POST.get("ErrorCode", "")[:16]
    )
    return HttpResponse(status=204)


# Twilio cannot send a CSRF token; the request signature is what authenticates it.
# nosemgrep: django-csrf-exempt - Twilio signs it; the signature is checked first
@csrf_exempt
@require_POST
def sms_webhook(request: HttpRequest) -> HttpResponse:
    if not signature.is_valid(request):
        logger.warning("Rejected an SMS webhook with a missing or invalid signature.")
        return _plain(403, "Invalid signature.")
    params = request.POST
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    sender = params.get("From") or ""
    if not sid or not sender or len(sid) > 64:
        return _plain(400, "MessageSid and From are required.")
    try:
        num_media = int(params.get("NumMedia") or 0)
    except ValueError:
        return _plain(400, "NumMedia must be a number.")
    if not 0 <= num_media <= MAX_MEDIA:
        return _plain(400, "NumMedia is out of range.")
    media_urls = [params.get(f"MediaUrl{i}", "") for i in range(num_media)]
    try:
        # Stored, or kept in the spool while the database is unreachable (still answered).
        reply = spool.receive_or_spool(
            provider=PROVIDER,
            provider_sid=sid,
            sender=sender,
            recipient=params.get("To", ""),
            body=params.get("Body", ""),
            media_urls=[url for url in media_urls if url],
        )
    except (DatabaseError, OSError, spool.SpoolFull):
        # Nothing was stored: answer with an error so Twilio delivers the message again.
        logger.exception("Could not store an inbound SMS; asking the provider to retry.")
        response = _plain(503, "Temporarily unavailable.")
        response["Retry-After"] = "5"
        return response
    return twiml(reply)

"""Twilio's voice webhooks: authenticate, then hand each step to calls.flow."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, QueryDict
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from calls import flow, prompts
from calls.script import Hangup, Pause, Script
from messaging.providers.twilio import signature
from messaging.providers.twilio.voice import render

logger = logging.getLogger(__name__)

PROVIDER = "twilio"


def _plain(status: int, text: str) -> HttpResponse:
    return HttpResponse(text + "\n", status=status, content_type="text/plain")


def _twiml(verbs: Script) -> HttpResponse:
    return HttpResponse(render(verbs), content_type="application/xml")


# Twilio does not fetch TwiML again after an error, so a caller must never get one: a
# caller on hold keeps holding (the next loop tries again), any other caller hears how
# else to reach the hotline. Callbacks answer 503.
CALLER_STEPS = frozenset({"language", "hold-key", "left-queue", "recorded", "bridge"})


def _unavailable(step: str) -> HttpResponse:
    logger.exception("The voice flow could not reach the database.")
    if step == "hold":
        return _twiml([Pause(seconds=5)])
    if step in CALLER_STEPS or step == "":
        return _twiml([*prompts.sorry_technical_problem(), Hangup()])
    if step in {"leg-answer", "leg-accept", "leg-dialled"}:
        return _twiml([Hangup()])
    response = _plain(503, "Temporarily unavailable.")
    response["Retry-After"] = "5"
    return response


# Twilio cannot send a CSRF token; the request signature is what authenticates it.
# nosemgrep: django-csrf-exempt - Twilio signs it; the signature is checked first
@csrf_exempt
@require_POST
def incoming_call(request: HttpRequest) -> HttpResponse:
    """A call to the hotline number: the language menu."""
    if not signature.is_valid(request):
        logger.warning("Rejected a voice webhook with a missing or invalid signature.")
        return _plain(403, "Invalid signature.")
    sid = request.POST.get("CallSid", "")
    if not sid or len(sid) > 64:
        return _plain(400, "CallSid is required.")
    try:
        return _twiml(
            flow.answer_call(
                provider=PROVIDER, provider_sid=sid, caller=request.POST.get("From", "")
            )
        )
    except DatabaseError:
        return _unavailable("")


StepHandler = Callable[[QueryDict, str, str], HttpResponse]


def _status(params: QueryDict, call: str, leg: str) -> HttpResponse:
    sid = params.get("CallSid", "")
    if not sid or len(sid) > 64 or not params.get("CallStatus"):
        return _plain(400, "CallSid and CallStatus are required.")
    flow.call_status(
        provider=PROVIDER,
        provider_sid=sid,
        status=params.get("CallStatus", ""),
        duration=params.get("CallDuration", ""),
    )
    return HttpResponse(status=204)


def _language(params: QueryDict, call: str, leg: str) -> HttpResponse:
    return _twiml(
        flow.choose_language(
            call_uuid=call,
            digits=params.get("Digits", ""),
            speech=params.get("SpeechResult", "")[:200],
        )
    )


def _recorded(params: QueryDict, call: str, leg: str) -> HttpResponse:
    return _twiml(
        flow.recorded(
            call_uuid=call,
            recording_sid=params.get("RecordingSid", ""),
            reference=params.get("RecordingUrl", ""),
            seconds=params.get("RecordingDuration", ""),
        )
    )


def _recording(params: QueryDict, call: str, leg: str) -> HttpResponse:
    if params.get("RecordingStatus") == "completed" and params.get("RecordingSid"):
        flow.save_recording(
            call_uuid=call,
            recording_sid=params.get("RecordingSid", ""),
            reference=params.get("RecordingUrl", ""),
            seconds=params.get("RecordingDuration", ""),
            ready=True,
        )
    return HttpResponse(status=204)


def _leg_status(params: QueryDict, call: str, leg: str) -> HttpResponse:
    if not params.get("CallStatus"):
        return _plain(400, "CallStatus is required.")
    flow.leg_status(leg_uuid=leg, status=params.get("CallStatus", ""))
    return HttpResponse(status=204)


STEPS: dict[str, StepHandler] = {
    "status": _status,
    "language": _language,
    "hold": lambda params, call, leg: _twiml(
        flow.hold(call_uuid=call, queue_sid=params.get("QueueSid", ""))
    ),
    "bridge": lambda params, call, leg: _twiml(flow.bridge(call_uuid=call)),
    "leg-dialled": lambda params, call, leg: _twiml(flow.dispatcher_dialled(leg_uuid=leg)),
    "hold-key": lambda params, call, leg: _twiml(
        flow.hold_key(call_uuid=call, digits=params.get("Digits", ""))
    ),
    "left-queue": lambda params, call, leg: _twiml(
        flow.left_queue(call_uuid=call, result=params.get("QueueResult", ""))
    ),
    "recorded": _recorded,
    "recording": _recording,
    "leg-answer": lambda params, call, leg: _twiml(flow.offer_to_dispatcher(leg_uuid=leg)),
    "leg-accept": lambda params, call, leg: _twiml(
        flow.dispatcher_pressed(leg_uuid=leg, digits=params.get("Digits", ""))
    ),
    "leg-status": _leg_status,
}


# Twilio cannot send a CSRF token; the request signature is what authenticates it.
# nosemgrep: django-csrf-exempt - Twilio signs it; the signature is checked first
@csrf_exempt
@require_POST
def call_step(request: HttpRequest, step: str) -> HttpResponse:
    """Every later request of a call: the menu answer, hold, the message, the
    dispatchers' phones, and status callbacks."""
    if not signature.is_valid(request):
        logger.warning("Rejected a voice webhook with a missing or invalid signature.")
        return _plain(403, "Invalid signature.")
    handler = STEPS.get(step)
    if handler is None:
        return _plain(404, "No such step.")
    try:
        return handler(request.POST, request.GET.get("call", ""), request.GET.get("leg", ""))
    except flow.UnknownCall:
        return _plain(404, "Unknown call.")
    except ValueError as exc:
        return _plain(400, str(exc))
    except DatabaseError:
        return _unavailable(step)

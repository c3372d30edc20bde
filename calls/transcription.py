"""Turning voicemails into text: a pluggable engine, none by default.

``RR_TRANSCRIPTION_ENGINE`` names a callable ``(audio: bytes, content_type: str,
language: str) -> str``. Without one the voicemail report is still complete: the
dispatcher listens to it. An engine that fails leaves the report as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import cast

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from calls.models import Call
from intake.models import Report

logger = logging.getLogger(__name__)

Engine = Callable[[bytes, str, str], str]
MAX_TRANSCRIPT_CHARS = 4000


def engine() -> Engine | None:
    if not settings.RR_TRANSCRIPTION_ENGINE:
        return None
    return cast(Engine, import_string(settings.RR_TRANSCRIPTION_ENGINE))


def transcribe_call(*, call_id: int) -> bool:
    """Transcribe a call's voicemail into its report's text, once."""
    from messaging.providers import active_voice_provider

    transcribe = engine()
    call = Call.objects.filter(pk=call_id).select_related("report").first()
    if transcribe is None or call is None or not call.recording_reference or call.transcript:
        return False
    audio, content_type = active_voice_provider().fetch_recording(
        reference=call.recording_reference
    )
    try:
        text = transcribe(audio, content_type, call.language)
    except Exception:
        logger.exception("The transcription engine failed; the voicemail stays as it is.")
        return False
    text = (text or "").strip()[:MAX_TRANSCRIPT_CHARS]
    if not text:
        return False
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call_id)
        call.transcript = text
        call.save(update_fields=["transcript"])
        if call.report_id is not None:
            report = Report.objects.select_for_update().get(pk=call.report_id)
            if not report.text:
                report.text = text
                report.save(update_fields=["text"])
    return True

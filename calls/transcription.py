"""Turning voicemails into text: a pluggable engine, none by default.

``RR_TRANSCRIPTION_ENGINE`` names a callable ``(audio: bytes, content_type: str,
language: str) -> str``. Without one the voicemail report is still complete: the
dispatcher listens to it. An engine that fails leaves the report as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import cast

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
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


MAX_ATTEMPTS = 3


def transcribe_call(*, call_id: int) -> bool:
    """Transcribe a call's voicemail into its report's text, once. A failure (the
    recording not fetchable yet, the engine down) is retried by ``retry_transcriptions``
    up to MAX_ATTEMPTS times."""
    from messaging.providers import active_voice_provider

    transcribe = engine()
    call = Call.objects.filter(pk=call_id).select_related("report").first()
    if transcribe is None or call is None or not call.recording_reference or call.transcript:
        return False
    Call.objects.filter(pk=call_id).update(transcription_attempts=F("transcription_attempts") + 1)
    try:
        audio, content_type = active_voice_provider().fetch_recording(
            reference=call.recording_reference
        )
        text = transcribe(audio, content_type, call.language)
    except Exception:
        logger.exception("Transcription failed; it is tried again later.")
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


def retry_transcriptions() -> int:
    """Voicemails of the past day still without a transcript, tried again."""
    if engine() is None:
        return 0
    # The transcript is encrypted, so whether it is empty is read per call (at most 20).
    due = Call.objects.filter(
        recording_sid__isnull=False,
        transcription_attempts__gt=0,
        transcription_attempts__lt=MAX_ATTEMPTS,
        started_at__gte=timezone.now() - timedelta(days=1),
    ).order_by("started_at")[:20]
    return sum(transcribe_call(call_id=call.pk) for call in due if not call.transcript)

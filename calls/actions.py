"""Writes for the voice hotline that staff make: shifts, phones, call backs, prompts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from calls.models import (
    Call,
    Callback,
    CallbackOutcome,
    DispatcherLine,
    DispatcherShift,
    PromptKey,
    VoicePrompt,
)
from core import audit, hash_rotation, phones
from core.models import AuditAction
from dispatch.actions import check_shift
from incidents.actions import ActionRefused
from intake.actions import CallReport, file_call_report
from intake.models import Report

MAX_PROMPT_AUDIO_BYTES = 2 * 1024 * 1024
PROMPT_AUDIO_TYPES = {"audio/mpeg": "mp3", "audio/wav": "wav"}


@transaction.atomic
def set_on_shift(*, actor: Any, line: DispatcherLine, on_shift: bool) -> DispatcherLine:
    """On: calls ring this phone now. Off: they stop, and an OFF during a scheduled
    shift holds until that shift ends."""
    from calls.tasks import ring_dispatchers

    line = DispatcherLine.objects.select_for_update().get(pk=line.pk)
    if not line.active:
        raise ActionRefused(_("This phone is not active for hotline calls."))
    now = timezone.now()
    line.on_shift = on_shift
    line.on_shift_changed_at = now
    if on_shift:
        line.off_until = None
        transaction.on_commit(ring_dispatchers.enqueue)
    else:
        line.off_until = (
            line.shifts.filter(starts_at__lte=now, ends_at__gt=now)
            .order_by("-ends_at")
            .values_list("ends_at", flat=True)
            .first()
        )
    line.save()
    audit.record(actor=actor, action=AuditAction.DISPATCHER_SHIFT, target=line, on_shift=on_shift)
    return line


def save_line(*, actor: Any, user: Any, phone: str, active: bool = True) -> DispatcherLine:
    """Give a dispatcher the phone their hotline calls ring on."""
    e164 = phones.normalize(phone)
    try:
        with transaction.atomic():
            hash_rotation.bring_forward(e164)  # a no-op unless RR_HASH_KEY is rotating
            line, _created = DispatcherLine.objects.select_for_update().get_or_create(
                user=user,
                defaults={"phone": e164, "phone_hash": phones.phone_hash(e164), "active": active},
            )
            line.phone = e164
            line.phone_hash = phones.phone_hash(e164)
            line.active = active
            if not active:
                line.on_shift = False
            line.save()
            audit.record(actor=actor, action=AuditAction.DISPATCHER_LINE_SAVED, target=user)
    except IntegrityError as exc:
        raise ActionRefused(_("Another dispatcher already uses this phone number.")) from exc
    return line


def add_shift(
    *, actor: Any, line: DispatcherLine, starts_at: datetime, ends_at: datetime
) -> DispatcherShift:
    check_shift(starts_at, ends_at)
    with transaction.atomic():
        shift = DispatcherShift.objects.create(line=line, starts_at=starts_at, ends_at=ends_at)
        audit.record(actor=actor, action=AuditAction.DISPATCHER_LINE_SAVED, target=line.user)
    return shift


def remove_shift(*, actor: Any, shift: DispatcherShift) -> None:
    with transaction.atomic():
        audit.record(actor=actor, action=AuditAction.DISPATCHER_LINE_SAVED, target=shift.line.user)
        shift.delete()


def log_callback(*, actor: Any, call: Call, outcome: str) -> Callback:
    """A dispatcher called a missed caller back. Reaching them, or leaving a message,
    takes the call off the list; no answer keeps it there with the try counted."""
    if outcome not in CallbackOutcome.values:
        raise ActionRefused(_("Choose how the call back went."))
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call.pk)
        if call.is_open:
            raise ActionRefused(_("This call is still in progress."))
        callback = Callback.objects.create(call=call, by=actor, outcome=outcome)
        if outcome != CallbackOutcome.NO_ANSWER:
            call.needs_callback = False
            call.called_back_at = callback.at
            call.save(update_fields=["needs_callback", "called_back_at"])
        audit.record(actor=actor, action=AuditAction.CALLBACK_LOGGED, target=call, outcome=outcome)
    return callback


def write_call_report(
    *, actor: Any, call: Call, data: CallReport, submission_key: uuid.UUID | None = None
) -> Report:
    """The report a dispatcher writes while talking to (or calling back) a caller; the
    form's submission key makes a double submission one report."""
    from calls.flow import is_callable

    report = file_call_report(
        actor=actor,
        data=data,
        received_at=call.started_at,
        caller_hash=call.caller_hash if is_callable(call.caller) else "",
        submission_key=submission_key,
    )
    with transaction.atomic():
        updated = Call.objects.filter(pk=call.pk, report__isnull=True).update(report=report)
        audit.record(
            actor=actor, action=AuditAction.CALL_REPORT_WRITTEN, target=call, linked=bool(updated)
        )
    return report


def reveal_caller(*, actor: Any, call: Call) -> str:
    """The caller's number, for a call back; every look is audited."""
    audit.record(actor=actor, action=AuditAction.CALLER_NUMBER_VIEWED, target=call)
    return str(call.caller)


def save_prompt(
    *,
    actor: Any,
    language: str,
    key: str,
    text: str = "",
    audio: bytes | None = None,
    audio_type: str = "",
) -> VoicePrompt:
    """A coordinator's own words for one prompt: typed, or a recording."""
    if key not in PromptKey.values:
        raise ActionRefused(_("Unknown prompt."))
    text = text.strip()
    if audio is not None:
        # What the browser declares is not trusted: the file is served to the provider.
        audio_type = sniff_audio(audio)
        if not audio_type:
            raise ActionRefused(_("Upload an MP3 or WAV recording."))
        if len(audio) > MAX_PROMPT_AUDIO_BYTES:
            raise ActionRefused(_("The recording is too large (2 MB at most)."))
    elif not text:
        raise ActionRefused(_("Type the prompt or upload a recording."))
    with transaction.atomic():
        prompt = VoicePrompt.objects.filter(language=language, key=key).first() or VoicePrompt(
            language=language, key=key
        )
        prompt.text = text
        prompt.updated_at = timezone.now()
        if audio is None and prompt.audio:
            # New words replace the recording; otherwise the recording would still play.
            prompt.audio.delete(save=False)
            prompt.audio_type = ""
        if audio is not None:
            if prompt.audio:
                prompt.audio.delete(save=False)
            prompt.audio_type = audio_type
            prompt.audio.save(
                f"{prompt.uuid}.{PROMPT_AUDIO_TYPES[audio_type]}", ContentFile(audio), save=False
            )
        prompt.save()
        audit.record(actor=actor, action=AuditAction.VOICE_PROMPT_SAVED, target=prompt, key=key)
    return prompt


def sniff_audio(data: bytes) -> str:
    """The content type of an MP3 or WAV file from its first bytes, or ""."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    return ""


def reset_prompt(*, actor: Any, prompt: VoicePrompt) -> None:
    """Back to the built-in text."""
    with transaction.atomic():
        audit.record(actor=actor, action=AuditAction.VOICE_PROMPT_SAVED, target=prompt, reset=True)
        if prompt.audio:
            prompt.audio.delete(save=False)
        prompt.delete()

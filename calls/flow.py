"""The hotline's call flow, step by step, for any provider.

A call comes in (``answer_call``), the caller picks a language (``choose_language``),
then either waits in their own queue while every free dispatcher on shift rings
(``hold``, ``hold_key``), or leaves a message (``voicemail``). A dispatcher's phone
that picks up hears the offer (``offer_to_dispatcher``) and presses 1 to take the
call (``dispatcher_pressed``); the first one wins. Status callbacks (``call_status``,
``leg_status``) and the recording (``save_recording``) only ever move a call forward,
however late or often they arrive.

Who takes the call and whether the caller leaves a message are both decided by a
conditional update from ``waiting``, so exactly one of them happens.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from calls import limits, prompts, routing
from calls.models import (
    FINAL_LEG_STATES,
    LIVE_LEG_STATES,
    Call,
    CallLeg,
    CallOutcome,
    CallState,
    LegState,
    PromptKey,
)
from calls.script import (
    DialQueue,
    Enqueue,
    Gather,
    Hangup,
    Leave,
    Pause,
    Play,
    Record,
    Redirect,
    Say,
    Script,
    Step,
)
from core import audit, hash_rotation, phones
from core.i18n import default_language
from core.locks import one_local_writer
from core.models import AuditAction

logger = logging.getLogger(__name__)

MENU_TRIES = 2
HOLD_PAUSE_SECONDS = 8
OFFER_WAIT_SECONDS = 8
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
# Twilio's stand-ins for a caller who hides their number.
ANONYMOUS_CALLERS = frozenset({"+266696687", "+86282452253", "+7378742833", "+2562533"})
QUEUE_LEFT_FOR_MESSAGE = frozenset({"leave", "queue-full", "error", "system-error"})


class UnknownCall(LookupError):
    """A step named a call or leg this deployment never saw."""


def _step(name: str, call: Call, leg: CallLeg | None = None) -> Step:
    return Step(name, str(call.uuid), str(leg.uuid) if leg else "")


def _uuid(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError as exc:
        raise UnknownCall(raw) from exc


def find_call(call_uuid: str) -> Call:
    call = Call.objects.filter(uuid=_uuid(call_uuid)).first()
    if call is None:
        raise UnknownCall(call_uuid)
    return call


def find_call_by_sid(*, provider: str, provider_sid: str) -> Call:
    call = Call.objects.filter(provider=provider, provider_sid=provider_sid).first()
    if call is None:
        raise UnknownCall(provider_sid)
    return call


def find_leg(leg_uuid: str) -> CallLeg:
    leg = CallLeg.objects.select_related("call", "line__user").filter(uuid=_uuid(leg_uuid)).first()
    if leg is None:
        raise UnknownCall(leg_uuid)
    return leg


# --- the caller's side ---------------------------------------------------------------


def answer_call(*, provider: str, provider_sid: str, caller: str) -> Script:
    """A new call (or the provider asking again for the same one): the language menu."""
    if not provider_sid or len(provider_sid) > 64:
        raise ValueError("A call needs the provider's call id.")
    call = Call.objects.filter(provider=provider, provider_sid=provider_sid).first()
    if call is None:
        number = phones.normalize_sender(caller) if caller else ""
        try:
            with one_local_writer(), transaction.atomic():
                hash_rotation.bring_forward(number)  # a no-op unless RR_HASH_KEY is rotating
                call = Call.objects.create(
                    provider=provider,
                    provider_sid=provider_sid,
                    caller=number,
                    caller_hash=phones.phone_hash(number) if number else "",
                )
                audit.record(actor=None, action=AuditAction.CALL_RECEIVED, target=call)
        except IntegrityError:
            # A concurrent retry stored it first.
            call = Call.objects.get(provider=provider, provider_sid=provider_sid)
    if call.state != CallState.MENU:
        # The provider asked again for a call that has moved on: carry on from there.
        return _resume(call)
    return _menu(call)


def _menu(call: Call) -> Script:
    languages = prompts.menu_languages()
    first = languages[0].code if languages else default_language()
    spoken: list[Say | Play | Pause] = [prompts.prompt(PromptKey.GREETING, first)]
    spoken.extend(
        prompts.prompt(PromptKey.MENU, language.code, name=language.name, digit=language.digit)
        for language in languages
    )
    hints = [name for language in languages for name in language.spoken_names]
    return [
        Gather(
            action=_step("language", call),
            prompts=spoken,
            timeout=6,
            speech_voice=prompts.voice_for(first),
            hints=hints,
        ),
        # No answer: the language step counts the try and asks again or picks the default.
        Redirect(_step("language", call)),
    ]


def language_from_answer(digits: str, speech: str) -> str | None:
    languages = prompts.menu_languages()
    digits = digits.strip()
    if digits:
        for language in languages:
            if digits[:1] == str(language.digit):
                return language.code
        return None
    words = speech.strip().lower()
    if not words:
        return None
    for language in languages:
        if any(name in words for name in language.spoken_names):
            return language.code
    return None


def choose_language(*, call_uuid: str, digits: str = "", speech: str = "") -> Script:
    with one_local_writer(), transaction.atomic():
        call = Call.objects.select_for_update().get(pk=find_call(call_uuid).pk)
        if call.state != CallState.MENU:
            # A repeated request: carry on from where the call is.
            return _resume(call)
        language = language_from_answer(digits, speech)
        if language is None:
            call.menu_attempts += 1
            if call.menu_attempts < MENU_TRIES:
                call.save(update_fields=["menu_attempts"])
                return _menu(call)
            offered = prompts.menu_languages()
            language = offered[0].code if offered else default_language()
        call.language = language
        reason = ""
        if limits.over_limit(call):
            reason = limits.REASON  # rings no one: the caller leaves a message
        elif not routing.lines_on_shift().exists():
            reason = "no_one_on_shift"
        if reason:
            call.state = CallState.VOICEMAIL
            call.voicemail_reason = reason
            call.save(update_fields=["language", "state", "voicemail_reason", "menu_attempts"])
            return [prompts.prompt(PromptKey.NO_ONE, language), *voicemail(call)]
        call.state = CallState.WAITING
        call.queued_at = timezone.now()
        call.save(update_fields=["language", "state", "queued_at", "menu_attempts"])
        routing.after_commit_stop_and_ring([])
    return [
        prompts.prompt(PromptKey.HOLD, call.language),
        Enqueue(queue=call.queue_name, wait=_step("hold", call), action=_step("left-queue", call)),
    ]


def _resume(call: Call) -> Script:
    if call.state == CallState.WAITING:
        return [
            Enqueue(
                queue=call.queue_name, wait=_step("hold", call), action=_step("left-queue", call)
            )
        ]
    if call.state == CallState.VOICEMAIL:
        return voicemail(call)
    return [Hangup()]


def voicemail(call: Call) -> Script:
    return [
        prompts.prompt(PromptKey.VOICEMAIL, call.language),
        Record(
            action=_step("recorded", call),
            status=_step("recording", call),
            max_seconds=settings.RR_VOICEMAIL_MAX_SECONDS,
        ),
        # Only reached when nothing was recorded.
        prompts.prompt(PromptKey.NO_MESSAGE, call.language),
        Hangup(),
    ]


def _send_to_voicemail(call: Call, reason: str) -> bool:
    """waiting -> voicemail, unless a dispatcher took the call first."""
    moved = Call.objects.filter(pk=call.pk, state=CallState.WAITING).update(
        state=CallState.VOICEMAIL, voicemail_reason=reason
    )
    if moved:
        call.state, call.voicemail_reason = CallState.VOICEMAIL, reason
        routing.after_commit_stop_and_ring(routing.cancel_live_legs(call))
    return bool(moved)


def why_no_answer(call: Call) -> str:
    """Why a waiting caller should leave a message now, or "" to keep waiting."""
    now = timezone.now()
    if call.queued_at and now - call.queued_at > timedelta(seconds=settings.RR_CALL_WAIT_SECONDS):
        return "timeout"
    on_shift = routing.lines_on_shift(now)
    if not on_shift.exists():
        return "no_one_on_shift"
    still_ringing = CallLeg.objects.filter(call=call, state__in=LIVE_LEG_STATES).exists()
    if not still_ringing and not routing.untried_lines_on_shift(call, now).exists():
        # Everyone on shift was rung for this call and none took it.
        return "no_answer"
    return ""


def hold(*, call_uuid: str, queue_sid: str = "") -> Script:
    """What a waiting caller hears, asked again by the provider each time it ends."""
    call = find_call(call_uuid)
    # Each request shows the caller is still there (a sweep ends calls that stop asking).
    Call.objects.filter(pk=call.pk).update(
        last_heard_at=timezone.now(), **({"queue_sid": queue_sid[:64]} if queue_sid else {})
    )
    if call.state == CallState.CONNECTED:
        return [Pause(seconds=1)]
    if call.state != CallState.WAITING:
        return [Leave()]
    reason = why_no_answer(call)
    if reason:
        with one_local_writer(), transaction.atomic():
            if _send_to_voicemail(call, reason):
                return [prompts.prompt(PromptKey.NO_ONE, call.language), Leave()]
        return [Pause(seconds=1)]
    # Calls ahead of this one, and whether a dispatcher is ringing for it right now.
    ahead = Call.objects.filter(state=CallState.WAITING, queued_at__lt=call.queued_at).count()
    ringing = CallLeg.objects.filter(call=call, state__in=LIVE_LEG_STATES).exists()
    spoken: list[Say | Play | Pause] = []
    if ahead or not ringing:
        spoken.append(prompts.prompt(PromptKey.POSITION, call.language, position=ahead + 1))
    else:
        spoken.append(prompts.prompt(PromptKey.HOLD, call.language))
    spoken.append(prompts.prompt(PromptKey.LEAVE_OPTION, call.language))
    # The pause is inside the Gather, so a key pressed during it still counts.
    spoken.append(Pause(seconds=HOLD_PAUSE_SECONDS))
    return [Gather(action=_step("hold-key", call), prompts=spoken, timeout=1)]


def hold_key(*, call_uuid: str, digits: str) -> Script:
    """A key pressed while on hold: 1 leaves a message, anything else keeps waiting."""
    call = find_call(call_uuid)
    if digits.strip()[:1] == "1":
        with one_local_writer(), transaction.atomic():
            if _send_to_voicemail(call, "caller_chose"):
                return [Leave()]
    return [Redirect(_step("hold", call))]


def left_queue(*, call_uuid: str, result: str) -> Script:
    """The caller is out of their queue: talked to a dispatcher, hung up, or is to leave
    a message."""
    call = find_call(call_uuid)
    if result == "bridged":
        _mark_bridged(call)
    elif result == "hangup":
        # The caller hung up on hold; the status callback may never come.
        call_status(provider=call.provider, provider_sid=call.provider_sid, status="completed")
    if result in QUEUE_LEFT_FOR_MESSAGE:
        if call.state == CallState.WAITING:
            with one_local_writer(), transaction.atomic():
                _send_to_voicemail(call, "queue_" + result.replace("-", "_")[:10])
            call.refresh_from_db()
        if call.state == CallState.VOICEMAIL:
            return voicemail(call)
    return [Hangup()]


def _mark_bridged(call: Call) -> None:
    Call.objects.filter(pk=call.pk, bridged_at__isnull=True, answered_by__isnull=False).update(
        bridged_at=timezone.now()
    )


def bridge(*, call_uuid: str) -> Script:
    """Runs on the caller's side just before they are connected to the dispatcher."""
    call = find_call(call_uuid)
    _mark_bridged(call)
    return []


def recorded(*, call_uuid: str, recording_sid: str, reference: str, seconds: str) -> Script:
    """The caller finished their message (or hung up while leaving it)."""
    call = find_call(call_uuid)
    if recording_sid:
        save_recording(
            call_uuid=call_uuid, recording_sid=recording_sid, reference=reference, seconds=seconds
        )
        return [prompts.prompt(PromptKey.THANKS, call.language or default_language()), Hangup()]
    return [prompts.prompt(PromptKey.NO_MESSAGE, call.language or default_language()), Hangup()]


def save_recording(
    *, call_uuid: str, recording_sid: str, reference: str, seconds: str, ready: bool = False
) -> Call:
    """Keep the voicemail and file it as a report to call back. Idempotent: the record
    action and the recording callback both arrive, in either order, maybe twice. Only
    the callback (``ready``) means the audio can be fetched, for transcription."""
    from calls.tasks import transcribe_voicemail
    from incidents import console
    from incidents.models import ConsoleEventKind
    from intake.actions import file_voicemail_report

    if not recording_sid or len(recording_sid) > 64:
        raise ValueError("A recording needs the provider's recording id.")
    with one_local_writer(), transaction.atomic():
        call = Call.objects.select_for_update().get(pk=find_call(call_uuid).pk)
        if ready and settings.RR_TRANSCRIPTION_ENGINE and not call.transcript:
            call_id = call.pk
            transaction.on_commit(lambda: transcribe_voicemail.enqueue(call_id=call_id))
        if call.recording_sid:
            return call
        call.recording_sid = recording_sid
        call.recording_reference = reference[:500]
        call.recording_seconds = _seconds(seconds)
        if call.state == CallState.ENDED and call.outcome != CallOutcome.ANSWERED:
            # The recording arrived after the hang-up: the call was a voicemail after all.
            call.outcome = CallOutcome.VOICEMAIL
        limited = limits.over_limit(call)
        call.needs_callback = not (limited and limits.earlier_call_listed(call))
        joined = limits.report_to_join(call) if limited else None
        if joined is not None:
            call.report = joined
            console.publish(ConsoleEventKind.REPORT, joined.uuid)
        else:
            call.report = file_voicemail_report(
                language=call.language or default_language(),
                received_at=call.started_at,
                caller_hash=call.caller_hash if is_callable(call.caller) else "",
            )
        call.save()
        audit.record(
            actor=None,
            action=AuditAction.VOICEMAIL_RECEIVED,
            target=call,
            seconds=call.recording_seconds,
        )
    return call


def _seconds(raw: str) -> int | None:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return None
    return value if 0 <= value <= 24 * 3600 else None


def call_status(*, provider: str, provider_sid: str, status: str, duration: str = "") -> bool:
    """The caller's call changed state at the provider. Only the end matters; it is
    recorded once. Returns whether the call is known."""
    status = status.strip().lower()
    with one_local_writer(), transaction.atomic():
        call = (
            Call.objects.select_for_update()
            .filter(provider=provider, provider_sid=provider_sid)
            .first()
        )
        if call is None:
            return False
        if status not in FINAL_CALL_STATUSES:
            return True
        if call.state == CallState.ENDED:
            # Ended already (a hang-up on hold ends the call at once): the real callback
            # still brings the duration.
            if call.duration_seconds is None and _seconds(duration) is not None:
                call.duration_seconds = _seconds(duration)
                call.save(update_fields=["duration_seconds"])
            return True
        call.state = CallState.ENDED
        call.ended_at = timezone.now()
        call.duration_seconds = _seconds(duration)
        if call.bridged_at is not None:
            call.outcome = CallOutcome.ANSWERED
        elif call.recording_sid:
            call.outcome = CallOutcome.VOICEMAIL
        else:
            call.outcome = CallOutcome.ABANDONED
        call.needs_callback = (
            call.outcome == CallOutcome.VOICEMAIL
            or (call.outcome == CallOutcome.ABANDONED and is_callable(call.caller))
        ) and not limits.already_listed(call)
        call.save()
        CallLeg.objects.filter(call=call, state=LegState.ACCEPTED).update(
            state=LegState.ENDED, ended_at=call.ended_at
        )
        routing.after_commit_stop_and_ring(routing.cancel_live_legs(call))
        if call.queue_sid:
            from calls.tasks import delete_call_queue

            queue_sid = call.queue_sid
            transaction.on_commit(lambda: delete_call_queue.enqueue(queue_sid=queue_sid))
        audit.record(actor=None, action=AuditAction.CALL_ENDED, target=call, outcome=call.outcome)
    return True


def is_callable(number: str) -> bool:
    return number.startswith("+") and number not in ANONYMOUS_CALLERS


# --- a dispatcher's phone ---------------------------------------------------------------


def _language_name(code: str) -> str:
    for language in prompts.menu_languages():
        if language.code == code:
            return language.name
    return code


def _too_late(call: Call, leg: CallLeg, speaks: str) -> Script:
    """A dispatcher's phone reached a call that was taken or that the caller left."""
    if leg.state in LIVE_LEG_STATES:
        leg.state, leg.ended_at = LegState.CANCELLED, timezone.now()
        leg.save(update_fields=["state", "ended_at"])
    kind = "taken" if call.answered_by_id else "gone"
    return [prompts.dispatcher_text(kind, speaks), Hangup()]


def offer_to_dispatcher(*, leg_uuid: str) -> Script:
    """A dispatcher's phone picked up (a person, or their voicemail: only a key press
    takes the call)."""
    leg = find_leg(leg_uuid)
    speaks = leg.line.user.language
    with one_local_writer(), transaction.atomic():
        call = Call.objects.select_for_update().get(pk=leg.call_id)
        leg = CallLeg.objects.select_for_update().get(pk=leg.pk)
        if leg.state not in LIVE_LEG_STATES or call.state != CallState.WAITING:
            return _too_late(call, leg, speaks)
        leg.state = LegState.PICKED_UP
        leg.picked_up_at = timezone.now()
        leg.save(update_fields=["state", "picked_up_at"])
    offer = prompts.dispatcher_text("offer", speaks, caller_language=_language_name(call.language))
    return [
        Gather(
            action=_step("leg-accept", call, leg),
            prompts=[offer, Pause(seconds=1), offer],
            timeout=OFFER_WAIT_SECONDS,
        ),
        prompts.dispatcher_text("not_taken", speaks),
        Hangup(),
    ]


def dispatcher_pressed(*, leg_uuid: str, digits: str) -> Script:
    """1 takes the call if no one has; anything else lets it go."""
    leg = find_leg(leg_uuid)
    speaks = leg.line.user.language
    if digits.strip()[:1] != "1":
        with one_local_writer(), transaction.atomic():
            CallLeg.objects.filter(pk=leg.pk, state__in=LIVE_LEG_STATES).update(
                state=LegState.DECLINED, ended_at=timezone.now()
            )
            routing.after_commit_stop_and_ring([])
        return [prompts.dispatcher_text("not_taken", speaks), Hangup()]
    with one_local_writer(), transaction.atomic():
        # The call's row first, then the leg's: every writer locks in this order, so two
        # dispatchers pressing 1 together queue on the call instead of deadlocking.
        call = Call.objects.select_for_update().get(pk=leg.call_id)
        leg = CallLeg.objects.select_for_update().select_related("line__user").get(pk=leg.pk)
        if leg.state not in LIVE_LEG_STATES or call.state != CallState.WAITING:
            return _too_late(call, leg, speaks)
        call.state = CallState.CONNECTED
        call.answered_by = leg.line.user
        call.answered_at = timezone.now()
        call.save(update_fields=["state", "answered_by", "answered_at"])
        leg.state = LegState.ACCEPTED
        leg.save(update_fields=["state"])
        routing.after_commit_stop_and_ring(routing.cancel_live_legs(call, keep=leg))
        audit.record(actor=leg.line.user, action=AuditAction.CALL_ANSWERED, target=call)
    return [
        prompts.dispatcher_text("connecting", speaks),
        DialQueue(
            queue=call.queue_name,
            bridge=_step("bridge", call),
            done=_step("leg-dialled", call, leg),
        ),
    ]


def dispatcher_dialled(*, leg_uuid: str) -> Script:
    """The dispatcher's connection to the caller ended, or never happened because the
    caller had hung up."""
    leg = find_leg(leg_uuid)
    speaks = leg.line.user.language
    call = Call.objects.get(pk=leg.call_id)
    if call.bridged_at is None:
        return [prompts.dispatcher_text("caller_gone", speaks), Hangup()]
    return [Hangup()]


def leg_status(*, leg_uuid: str, status: str) -> None:
    """A dispatcher's phone changed state at the provider; forward only."""
    status = status.strip().lower()
    found = find_leg(leg_uuid)
    with one_local_writer(), transaction.atomic():
        call = Call.objects.select_for_update().get(pk=found.call_id)
        leg = CallLeg.objects.select_for_update().get(pk=found.pk)
        if leg.state in FINAL_LEG_STATES:
            return
        if status == "ringing" and leg.state == LegState.DIALING:
            leg.state = LegState.RINGING
            leg.save(update_fields=["state"])
            return
        if status not in FINAL_CALL_STATUSES:
            return
        if leg.state == LegState.ACCEPTED:
            leg.state = LegState.ENDED
            if call.state == CallState.CONNECTED and call.bridged_at is None:
                # The dispatcher's phone dropped before the caller was connected: the
                # caller is still on hold, so ring whoever else can take them.
                call.state, call.answered_by, call.answered_at = CallState.WAITING, None, None
                call.save(update_fields=["state", "answered_by", "answered_at"])
        elif leg.state == LegState.PICKED_UP:
            leg.state = LegState.DECLINED
        else:
            leg.state = LegState.MISSED
        leg.ended_at = timezone.now()
        leg.save(update_fields=["state", "ended_at"])
        # A dispatcher who is free again rings for whoever waits next.
        routing.after_commit_stop_and_ring([])


def describe_reason(reason: str) -> str:
    return {
        "no_one_on_shift": _("no dispatcher on shift"),
        "timeout": _("no one answered in time"),
        "no_answer": _("no dispatcher took the call"),
        "caller_chose": _("the caller chose to leave a message"),
        limits.REASON: _("this number had already called several times in a few minutes"),
    }.get(reason, _("the line was busy") if reason.startswith("queue_") else reason)


STALE_AFTER = timedelta(hours=4)


# A waiting caller's hold loop asks about every ten seconds; silence this long means
# they hung up and the callback that says so was lost.
SILENT_ON_HOLD = timedelta(minutes=2)
# A dispatcher's phone rings RR_CALL_RING_SECONDS; a leg still live well after that
# lost its final callback and would keep the dispatcher "busy".
LEG_GRACE = timedelta(seconds=60)


def close_stale_calls() -> int:
    """End calls whose final status callback never came, so the console does not show
    them ringing forever, no dispatcher stays busy, and a voicemail is still called
    back: callers silent on hold for two minutes, other calls after four hours."""
    now = timezone.now()
    silent = Call.objects.filter(state=CallState.WAITING).filter(
        Q(last_heard_at__lt=now - SILENT_ON_HOLD)
        | Q(last_heard_at__isnull=True, queued_at__lt=now - SILENT_ON_HOLD)
    )
    old = Call.objects.filter(started_at__lt=now - STALE_AFTER).exclude(state=CallState.ENDED)
    closed = 0
    for call in list(silent[:200]) + list(old[:200]):
        if call_status(provider=call.provider, provider_sid=call.provider_sid, status="completed"):
            closed += 1
    ring_limit = now - timedelta(seconds=settings.RR_CALL_RING_SECONDS) - LEG_GRACE
    freed = CallLeg.objects.filter(state__in=LIVE_LEG_STATES).filter(
        Q(created_at__lt=ring_limit) | Q(call__state=CallState.ENDED)
    )
    if CallLeg.objects.filter(pk__in=freed.values("pk")).update(
        state=LegState.MISSED, ended_at=now
    ):
        routing.ring_waiting_calls()
    return closed

"""Reads for the voice hotline: what the console shows about the phone lines."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from calls.models import LIVE_LEG_STATES, Call, CallState, DispatcherLine
from calls.routing import lines_on_shift
from intake.models import Channel, Report

MISSED_PAGE_SIZE = 20
LIVE_LIMIT = 50


def live_calls() -> QuerySet[Call]:
    """Calls ringing (menu or waiting) or in progress, oldest first, with how many
    dispatcher phones ring for each."""
    return (
        Call.objects.exclude(state=CallState.ENDED)
        .select_related("answered_by")
        .annotate(ringing=Count("legs", filter=Q(legs__state__in=LIVE_LEG_STATES)))
        .order_by("started_at")
    )


def missed_calls() -> QuerySet[Call]:
    """Voicemails and hang-ups waiting for a call back, oldest first: the longest
    waiting caller is called back first."""
    return (
        Call.objects.filter(needs_callback=True)
        .select_related("report")
        .annotate(tries=Count("callbacks"))
        .order_by("ended_at", "pk")
    )


def line_of(user: Any) -> DispatcherLine | None:
    return DispatcherLine.objects.filter(user=user).first()


def is_on_shift(line: DispatcherLine | None) -> bool:
    return line is not None and lines_on_shift().filter(pk=line.pk).exists()


def console_context(request: HttpRequest) -> dict[str, Any]:
    """The phone section of the console: five queries, however many calls there are."""
    live = list(live_calls()[:LIVE_LIMIT])
    line = line_of(request.user)
    on_shift = set(lines_on_shift().values_list("pk", flat=True))
    missed = Paginator(missed_calls(), MISSED_PAGE_SIZE).get_page(request.GET.get("missed"))
    return {
        "ringing": [call for call in live if call.state in {CallState.MENU, CallState.WAITING}],
        "in_progress": [
            call for call in live if call.state in {CallState.CONNECTED, CallState.VOICEMAIL}
        ],
        "my_calls": [call for call in live if call.answered_by_id == request.user.pk],
        "missed": missed,
        "line": line,
        "on_shift": line is not None and line.pk in on_shift,
        "dispatchers_on_shift": len(on_shift),
    }


def report_context(request: HttpRequest, report: Report) -> dict[str, Any]:
    """The call a report came from, for its page: the voicemail, the call back."""
    if report.channel != Channel.VOICE:
        return {"calls": []}
    return {"calls": list(Call.objects.filter(report=report).order_by("started_at"))}


def is_dispatcher_phone(phone_hash: str) -> bool:
    """Dispatchers' texts are never throttled as a flood (intake.throttle)."""
    return DispatcherLine.objects.filter(phone_hash=phone_hash, active=True).exists()

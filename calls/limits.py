"""Per-caller limits on the hotline.

One number rings the dispatchers for at most ``RR_CALLS_PER_CALLER`` calls within
``RR_CALLER_WINDOW_SECONDS``. Past that nothing is lost and nothing is hidden: the
caller hears that no volunteer can answer and leaves a message as on any unanswered
call; the call, its recording and its report are kept as usual. What changes is what
the repeated calls cost the people on shift:

- no dispatcher's phone rings for them (a number calling again and again cannot keep
  the whole shift's phones ringing);
- a message joins the report of the caller's latest call instead of opening another,
  so the console's queue gets one report however many messages come;
- a call is not listed for a call back while an earlier call from the number in the
  window is still listed: one call back answers them all.

Counted in the database, under keyed hashes only, so the limit holds with the cache
down and across web processes. Hidden numbers are never limited: the provider gives
them all the same few stand-ins, and people who hide their number are the callers this
hotline most needs to hear. Phones of dispatchers and active responders are never
limited either (the trusted-sender checks that texts use).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet

from calls.models import Call
from intake import throttle
from intake.models import Report, ReportStatus

# The reason a limited call was sent to leave a message (Call.voicemail_reason).
REASON = "caller_limit"


def _window() -> timedelta:
    return timedelta(seconds=settings.RR_CALLER_WINDOW_SECONDS)


def _earlier_calls(call: Call) -> QuerySet[Call]:
    """The caller's other calls that started in the window before this one."""
    return Call.objects.filter(
        caller_hash=call.caller_hash,
        started_at__gt=call.started_at - _window(),
        started_at__lte=call.started_at,
    ).exclude(pk=call.pk)


def over_limit(call: Call) -> bool:
    """Whether this call comes after the caller's limit of calls in the window."""
    from calls.flow import is_callable

    if not call.caller_hash or not is_callable(call.caller):
        return False
    if _earlier_calls(call).count() < settings.RR_CALLS_PER_CALLER:
        return False
    return not throttle.is_trusted(call.caller_hash)


def earlier_call_listed(call: Call) -> bool:
    """Whether an earlier call from the number in the window is still on the list to
    call back (so a call past the limit need not be listed too)."""
    return _earlier_calls(call).filter(needs_callback=True).exists()


def already_listed(call: Call) -> bool:
    """Whether this call is past the limit while an earlier one is listed to call back."""
    return over_limit(call) and earlier_call_listed(call)


def report_to_join(call: Call) -> Report | None:
    """The report of the caller's latest earlier call in the window, for a limited
    call's message; None when there is none to join. Never a dismissed report, nor one
    in an incident a dispatcher closed: the message would go unseen there."""
    latest = (
        _earlier_calls(call)
        .filter(report__isnull=False)
        .exclude(report__status=ReportStatus.DISMISSED)
        .select_related("report__incident")
        .order_by("-started_at", "-pk")
        .first()
    )
    if latest is None or latest.report is None:
        return None
    incident = latest.report.incident
    if incident is not None and not incident.is_open:
        return None
    return latest.report

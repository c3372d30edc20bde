"""Per-caller limits: a number calling again and again stops ringing the shift's phones,
its messages join one report and one call back, and nothing it says is lost."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F
from django.test import Client, override_settings
from django.utils import timezone

from calls import flow, limits
from calls.models import Call, CallLeg, CallState
from calls.tests.factories import dispatcher_on_shift
from calls.tests.voice import Caller
from core import phones
from incidents.models import IncidentStatus
from intake.models import Report, ReportStatus

NUMBER = "+15105550123"
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("shift")]


@pytest.fixture
def shift() -> None:
    dispatcher_on_shift("ana", "+15105550201")


def call_in(client: Client, n: int, number: str = NUMBER) -> Caller:
    return Caller(client, sid=f"CA{n}", number=number)


def ring_and_hang_up(client: Client, n: int, number: str = NUMBER) -> str:
    """A call that chooses English, waits, and hangs up; what it was routed to."""
    caller = call_in(client, n, number)
    answer = caller.press(caller.dial(), "1")
    caller.hang_up()
    return "queue" if "Enqueue" in answer.verbs() else "voicemail"


def leave_message(client: Client, n: int, number: str = NUMBER) -> Call:
    """A call that leaves a message; the call as stored."""
    caller = call_in(client, n, number)
    answer = caller.press(caller.dial(), "1")
    if "Enqueue" in answer.verbs():
        answer = caller.leave_queue(answer, "leave")
    caller.record(answer, sid=f"RE{n}")
    caller.hang_up()
    return Call.objects.get(provider_sid=f"CA{n}")


def test_the_call_past_the_limit_rings_no_one_and_leaves_a_message(client: Client) -> None:
    for n in range(5):
        assert ring_and_hang_up(client, n) == "queue"
    rung = CallLeg.objects.count()
    assert rung == 5

    caller = call_in(client, 5)
    answer = caller.press(caller.dial(), "1")
    assert answer.verbs() == ["Say", "Say", "Record", "Say", "Hangup"]
    assert "No volunteer can answer right now." in answer.text()
    call = Call.objects.get(provider_sid="CA5")
    assert (call.state, call.voicemail_reason) == (CallState.VOICEMAIL, limits.REASON)
    assert CallLeg.objects.count() == rung  # no phone rang for it
    assert "already called several times" in flow.describe_reason(call.voicemail_reason)

    caller.record(answer, sid="RE5")
    caller.hang_up()
    call.refresh_from_db()
    assert call.recording_sid == "RE5"  # the message is kept
    assert call.report is not None


def test_the_limit_counts_only_the_window(client: Client) -> None:
    for n in range(5):
        ring_and_hang_up(client, n)
    Call.objects.update(started_at=F("started_at") - timedelta(minutes=14))
    assert ring_and_hang_up(client, 5) == "voicemail"  # five calls in the last 15 minutes
    Call.objects.update(started_at=F("started_at") - timedelta(minutes=2))
    assert ring_and_hang_up(client, 6) == "queue"  # only the sixth is in the window now


@override_settings(RR_CALLS_PER_CALLER=2)
def test_messages_past_the_limit_join_one_report_and_one_call_back(client: Client) -> None:
    first = leave_message(client, 1)
    leave_message(client, 2)
    assert Report.objects.count() == 2
    listed = set(Call.objects.filter(needs_callback=True).values_list("provider_sid", flat=True))
    assert listed == {"CA1", "CA2"}

    third = leave_message(client, 3)
    fourth = leave_message(client, 4)
    assert Report.objects.count() == 2  # no new report for either
    second = Call.objects.get(provider_sid="CA2")
    assert third.report_id == fourth.report_id == second.report_id
    joined = Call.objects.filter(report=second.report)
    assert {c.recording_sid for c in joined} == {"RE2", "RE3", "RE4"}
    assert not third.needs_callback and not fourth.needs_callback
    assert first.needs_callback


@override_settings(RR_CALLS_PER_CALLER=1)
def test_once_called_back_the_next_limited_call_is_listed_again(client: Client) -> None:
    first = leave_message(client, 1)
    Call.objects.filter(pk=first.pk).update(needs_callback=False, called_back_at=timezone.now())
    second = leave_message(client, 2)
    assert second.voicemail_reason == limits.REASON
    assert second.needs_callback  # nobody else of theirs is waiting for a call back
    assert second.report_id == first.report_id


@override_settings(RR_CALLS_PER_CALLER=1)
def test_a_hang_up_past_the_limit_is_not_listed_twice(client: Client) -> None:
    first = leave_message(client, 1)
    assert first.needs_callback
    caller = call_in(client, 2)
    caller.dial()
    caller.hang_up()  # at the menu
    assert not Call.objects.get(provider_sid="CA2").needs_callback


@override_settings(RR_CALLS_PER_CALLER=1)
@pytest.mark.parametrize("status", [ReportStatus.DISMISSED, "closed"])
def test_a_message_never_joins_a_dismissed_report_or_a_closed_incident(
    client: Client, status: str
) -> None:
    first = leave_message(client, 1)
    report = first.report
    assert report is not None
    if status == "closed":
        from core.geo import Point
        from incidents import actions

        incident = actions.place_report(actor=None, report=report, point=Point(37.8, -122.27))
        incident.status = IncidentStatus.CLOSED
        incident.save(update_fields=["status"])
    else:
        Report.objects.filter(pk=report.pk).update(status=ReportStatus.DISMISSED)
    second = leave_message(client, 2)
    assert second.report_id not in (None, report.pk)
    assert Report.objects.count() == 2


def test_others_are_not_limited_by_one_numbers_calls(client: Client) -> None:
    for n in range(6):
        ring_and_hang_up(client, n)
    assert ring_and_hang_up(client, 10, number="+15105550999") == "queue"


@pytest.mark.parametrize("hidden", sorted(flow.ANONYMOUS_CALLERS)[:2])
def test_hidden_numbers_are_never_limited(client: Client, hidden: str) -> None:
    """The provider gives every hidden number the same stand-ins: limiting them would
    limit everyone who hides their number."""
    for n in range(7):
        assert ring_and_hang_up(client, n, number=hidden) == "queue"


def test_dispatchers_phones_are_never_limited(client: Client) -> None:
    dispatcher_on_shift("ben", "+15105550202")
    for n in range(7):
        assert ring_and_hang_up(client, n, number="+15105550202") == "queue"


def test_the_count_reads_the_index_not_every_call(client: Client) -> None:
    ring_and_hang_up(client, 1)
    call = Call.objects.get()
    assert call.caller_hash == phones.phone_hash(NUMBER)
    sql, params = limits._earlier_calls(call).query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A table this small would be scanned; the plan must still be able to use
            # the index once scanning is priced out.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, params)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        plan = " ".join(str(row) for row in cursor.fetchall())
    assert "call_caller_idx" in plan


def test_a_limit_below_one_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import rapidresponse.settings"],
        env={**os.environ, "RR_CALLS_PER_CALLER": "0"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "RR_CALLS_PER_CALLER" in result.stderr

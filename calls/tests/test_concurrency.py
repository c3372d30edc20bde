"""Two dispatchers press 1 at the same moment: exactly one gets the caller. On
PostgreSQL the two run in parallel for real; on SQLite they queue. Same outcome."""

from __future__ import annotations

import pytest

from calls import flow
from calls.models import Call, CallLeg, CallState, LegState
from calls.script import DialQueue, Leave
from calls.tests.factories import dispatcher_on_shift
from incidents.tests.test_concurrency import run_together


def waiting_call_with_legs(count: int) -> tuple[Call, list[CallLeg]]:
    for i in range(count):
        dispatcher_on_shift(f"dispatcher{i}", f"+1510555020{i}")
    flow.answer_call(provider="twilio", provider_sid="CArace", caller="+15105550123")
    call = Call.objects.get()
    flow.choose_language(call_uuid=str(call.uuid), digits="1")
    # Tests run tasks on commit; here the rings are made directly.
    from calls import routing

    routing.ring_waiting_calls()
    legs = list(call.legs.order_by("pk"))
    assert len(legs) == count
    for leg in legs:
        flow.offer_to_dispatcher(leg_uuid=str(leg.uuid))
    return call, legs


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_pressing_1_together_one_gets_the_caller() -> None:
    call, legs = waiting_call_with_legs(2)
    results: dict[int, list[object]] = {}

    def press(i: int) -> None:
        results[i] = list(flow.dispatcher_pressed(leg_uuid=str(legs[i].uuid), digits="1"))

    assert run_together(2, press) == []
    connected = [
        i for i, script in results.items() if any(isinstance(v, DialQueue) for v in script)
    ]
    assert len(connected) == 1
    call.refresh_from_db()
    assert call.state == CallState.CONNECTED
    winner = legs[connected[0]]
    assert call.answered_by == winner.line.user
    states = dict(CallLeg.objects.values_list("pk", "state"))
    assert states[winner.pk] == LegState.ACCEPTED
    assert list(states.values()).count(LegState.ACCEPTED) == 1


@pytest.mark.django_db(transaction=True)
def test_pressing_1_and_timing_out_together_is_one_or_the_other() -> None:
    """The hold loop sends the caller to voicemail at the moment a dispatcher takes the
    call: either the dispatcher gets them, or the caller leaves a message, never both."""
    call, legs = waiting_call_with_legs(1)
    results: dict[str, list[object]] = {}

    def race(i: int) -> None:
        if i == 0:
            results["dispatcher"] = list(
                flow.dispatcher_pressed(leg_uuid=str(legs[0].uuid), digits="1")
            )
        else:
            results["caller"] = list(flow.hold_key(call_uuid=str(call.uuid), digits="1"))

    assert run_together(2, race) == []
    got_caller = any(isinstance(v, DialQueue) for v in results["dispatcher"])
    left = any(isinstance(v, Leave) for v in results["caller"])
    assert got_caller != left
    call.refresh_from_db()
    assert call.state == (CallState.CONNECTED if got_caller else CallState.VOICEMAIL)

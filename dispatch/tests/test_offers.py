"""Offers by SMS: codes tie replies to offers; repeats, stale codes and strangers are
answered and change nothing; enough acceptances cover the rest."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from conftest import FRUITVALE, post_twilio, sms_params
from dispatch import actions, selectors
from dispatch.models import Finding, Offer, OfferStatus
from dispatch.tests.factories import responder
from incidents import actions as incident_actions
from incidents.models import Incident, IncidentStatus, TimelineKind
from intake.models import Report
from intake.tests.factories import web_report
from messaging import outbox
from messaging.models import OutboxKind, OutboxMessage

PATH = "/hooks/twilio/sms"


def incident() -> Incident:
    report = web_report(
        "two SUVs and agents in vests at the bus stop", at=FRUITVALE, where="International & 35th"
    )
    assert report.incident is not None
    return report.incident


def reply(client: Client, sid: str, body: str, sender: str) -> str:
    response = post_twilio(client, PATH, sms_params(sid, body, sender=sender))
    text = re.search(rb"<Message>(.*)</Message>", response.content, re.S)
    return text.group(1).decode() if text else ""


@pytest.mark.django_db
def test_an_offer_goes_by_sms_with_its_code(dispatcher: User) -> None:
    event = incident()
    person = responder(at=FRUITVALE)
    [offer] = actions.send_offers(actor=dispatcher, incident=event, responders=[person])
    sms = OutboxMessage.objects.get(kind=OutboxKind.OFFER)
    assert sms.contact.phone == person.phone
    assert f"YES {offer.code}" in sms.body and f"NO {offer.code}" in sms.body
    assert "International & 35th" in sms.body
    event.refresh_from_db()
    assert event.status == IncidentStatus.VERIFYING
    assert event.first_offer_at is not None
    assert event.timeline.filter(kind=TimelineKind.OFFERED).exists()


@pytest.mark.django_db
def test_yes_accepts_once_and_repeats_change_nothing(client: Client, dispatcher: User) -> None:
    event = incident()
    person = responder(at=FRUITVALE)
    [offer] = actions.send_offers(actor=dispatcher, incident=event, responders=[person])
    first = reply(client, "SM1", f"YES {offer.code}", person.phone)
    assert "/r/" in first and "CONFIRMED" in first
    offer.refresh_from_db()
    assert offer.status == OfferStatus.ACCEPTED
    accepted_at = offer.answered_at
    again = reply(client, "SM2", f"yes {offer.code}", person.phone)
    assert "already accepted" in again
    offer.refresh_from_db()
    assert offer.answered_at == accepted_at
    withdrawn = reply(client, "SM3", f"NO {offer.code}", person.phone)
    assert "no longer going" in withdrawn
    offer.refresh_from_db()
    assert offer.status == OfferStatus.WITHDRAWN
    assert "no longer open" in reply(client, "SM4", f"YES {offer.code}", person.phone)


@pytest.mark.django_db
def test_an_unknown_code_gets_a_clear_answer(client: Client, dispatcher: User) -> None:
    event = incident()
    person = responder(at=FRUITVALE)
    [offer] = actions.send_offers(actor=dispatcher, incident=event, responders=[person])
    answer = reply(client, "SM1", "YES 9999", person.phone)
    assert "No offer has the code 9999" in answer
    offer.refresh_from_db()
    assert offer.status == OfferStatus.OFFERED
    assert not Report.objects.filter(channel="sms").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "stranger"),
    [
        ("Si hay agentes de ICE en la calle 5", True),
        ("No se, vi dos camionetas de ICE", True),
        ("Not sure but ICE is at 5th and Main", True),
        ("Y 35th and International, agents everywhere", True),
        ("No se, vi dos camionetas de ICE", False),  # a responder reporting, no code
        ("YES 4821 there are agents at the corner", True),
        ("ON", True),
    ],
)
def test_messages_that_only_start_like_a_keyword_are_reports(
    client: Client, dispatcher: User, body: str, stranger: bool
) -> None:
    event = incident()
    person = responder(at=FRUITVALE)
    [offer] = actions.send_offers(actor=dispatcher, incident=event, responders=[person])
    answer = reply(client, "SM1", body, "+15105550999" if stranger else person.phone)
    assert "received your report" in answer or "recibió su reporte" in answer
    assert [r.text for r in Report.objects.filter(channel="sms")] == [body]
    offer.refresh_from_db()
    assert offer.status == OfferStatus.OFFERED


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body", ["YES {code}", "no {code}.", "CONFIRMED {code}", "NOT SEEN {code}"]
)
def test_a_stranger_answering_with_a_code_is_told_and_nothing_changes(
    client: Client, dispatcher: User, body: str
) -> None:
    event = incident()
    person = responder(at=FRUITVALE)
    [offer] = actions.send_offers(actor=dispatcher, incident=event, responders=[person])
    answer = reply(client, "SM1", body.format(code=offer.code), "+15105550999")
    assert "not registered as a responder" in answer
    offer.refresh_from_db()
    assert offer.status == OfferStatus.OFFERED
    assert not Report.objects.filter(channel="sms").exists()


@pytest.mark.django_db
def test_enough_acceptances_cover_the_others(client: Client, dispatcher: User) -> None:
    event = incident()
    event.verifiers_needed = 1
    event.save()
    a, b, c = (responder(at=FRUITVALE) for _ in range(3))
    offers = actions.send_offers(actor=dispatcher, incident=event, responders=[a, b, c])
    outbox.send_due()
    reply(client, "SM1", f"YES {offers[1].code}", b.phone)
    statuses = {o.responder_id: Offer.objects.get(pk=o.pk).status for o in offers}
    assert statuses == {a.pk: "covered", b.pk: "accepted", c.pk: "covered"}
    notices = OutboxMessage.objects.filter(kind=OutboxKind.NOTICE)
    assert notices.count() == 2
    assert all("covered" in n.body for n in notices)
    late = reply(client, "SM2", f"YES {offers[0].code}", a.phone)
    assert "no longer open" in late


@pytest.mark.django_db
def test_no_declines_and_spanish_replies_in_spanish(client: Client, dispatcher: User) -> None:
    event = incident()
    person = responder(at=FRUITVALE, languages=["es"])
    [offer] = actions.send_offers(actor=dispatcher, incident=event, responders=[person])
    assert f"SI {offer.code}" in OutboxMessage.objects.get(kind=OutboxKind.OFFER).body
    answer = reply(client, "SM1", f"NO {offer.code}", person.phone)
    offer.refresh_from_db()
    assert offer.status == OfferStatus.DECLINED
    assert "Gracias" in answer


@pytest.mark.django_db
def test_confirmed_and_not_seen_by_sms(client: Client, dispatcher: User) -> None:
    event = incident()
    a, b = responder(at=FRUITVALE), responder(at=FRUITVALE)
    offers = actions.send_offers(actor=dispatcher, incident=event, responders=[a, b])
    not_yours = reply(client, "SM0", f"CONFIRMED {offers[0].code}", a.phone)
    assert "not one you accepted" in not_yours
    reply(client, "SM1", f"YES {offers[0].code}", a.phone)
    reply(client, "SM2", f"YES {offers[1].code}", b.phone)
    assert "Recorded" in reply(client, "SM3", f"CONFIRMED {offers[0].code}", a.phone)
    assert "Recorded" in reply(client, "SM4", f"NOT SEEN {offers[1].code}", b.phone)
    findings = {o.responder_id: Offer.objects.get(pk=o.pk).field_report.finding for o in offers}
    assert findings == {a.pk: Finding.VERIFIED, b.pk: Finding.NOT_VERIFIED}
    assert actions.confirmations(event) == 1
    assert Offer.objects.get(pk=offers[0].pk).arrived_at is not None


@pytest.mark.django_db
def test_on_and_off_by_sms(client: Client) -> None:
    person = responder(available=False)
    answer = reply(client, "SM1", "ON", person.phone)
    person.refresh_from_db()
    assert person.available and "/r/me/" in answer
    reply(client, "SM2", "ocupado", person.phone)
    person.refresh_from_db()
    assert not person.available


@pytest.mark.django_db
def test_verifying_needs_confirmations_from_the_scene(
    client: Client, dispatcher: User, settings: Any
) -> None:
    settings.RR_CONFIRMATIONS_REQUIRED = 1
    event = incident()
    person = responder(at=FRUITVALE)
    [offer] = actions.send_offers(actor=dispatcher, incident=event, responders=[person])
    with pytest.raises(incident_actions.ActionRefused, match="confirmation"):
        incident_actions.change_status(
            actor=dispatcher, incident=event, status=IncidentStatus.VERIFIED, reason="sure"
        )
    reply(client, "SM1", f"YES {offer.code}", person.phone)
    reply(client, "SM2", f"CONFIRMED {offer.code}", person.phone)
    incident_actions.change_status(
        actor=dispatcher,
        incident=event,
        status=IncidentStatus.VERIFIED,
        reason="confirmed on scene",
    )
    event.refresh_from_db()
    assert event.status == IncidentStatus.VERIFIED
    assert event.decided_at is not None
    minutes = dict(event.response_times)
    assert all(value is not None for value in minutes.values())


@pytest.mark.django_db
def test_the_console_proposes_the_next_ring_when_nobody_answers(
    dispatcher: User, settings: Any
) -> None:
    settings.RR_OFFER_ESCALATE_MINUTES = 10
    event = incident()
    near = responder(at=FRUITVALE)
    actions.send_offers(actor=dispatcher, incident=event, responders=[near])
    assert not selectors.escalation_due(event, accepted=0, last_offer=timezone.now())
    Offer.objects.update(offered_at=timezone.now() - timedelta(minutes=11))
    last = Offer.objects.get().offered_at
    event.refresh_from_db()
    assert selectors.escalation_due(event, accepted=0, last_offer=last)


@pytest.mark.django_db
def test_an_unanswered_offer_is_escalated_once_on_the_timeline(
    dispatcher: User, settings: Any
) -> None:
    settings.RR_OFFER_ESCALATE_MINUTES = 10
    event = incident()
    actions.send_offers(actor=dispatcher, incident=event, responders=[responder(at=FRUITVALE)])
    assert actions.announce_escalations() == 0
    later = timezone.now() + timedelta(minutes=11)
    assert actions.announce_escalations(now=later) == 1
    assert actions.announce_escalations(now=later) == 0
    assert event.timeline.filter(kind=TimelineKind.ESCALATED).count() == 1
    # Offering to more responders starts the clock again.
    actions.send_offers(actor=dispatcher, incident=event, responders=[responder(at=FRUITVALE)])
    Offer.objects.update(offered_at=timezone.now())
    assert actions.announce_escalations(now=later + timedelta(minutes=11)) == 1


@pytest.mark.django_db
def test_closing_an_incident_cancels_its_open_offers(dispatcher: User) -> None:
    event = incident()
    person = responder(at=FRUITVALE)
    [offer] = actions.send_offers(actor=dispatcher, incident=event, responders=[person])
    incident_actions.change_status(
        actor=dispatcher, incident=event, status=IncidentStatus.CLOSED, reason="duplicate"
    )
    offer.refresh_from_db()
    assert offer.status == OfferStatus.CANCELLED


@pytest.mark.django_db
def test_offers_refuse_inactive_people_and_closed_incidents(dispatcher: User) -> None:
    event = incident()
    gone = responder(at=FRUITVALE, active=False)
    with pytest.raises(actions.ActionRefused):
        actions.send_offers(actor=dispatcher, incident=event, responders=[gone])
    incident_actions.change_status(
        actor=dispatcher, incident=event, status=IncidentStatus.CLOSED, reason="nothing"
    )
    with pytest.raises(actions.ActionRefused):
        actions.send_offers(actor=dispatcher, incident=event, responders=[responder(at=FRUITVALE)])


@pytest.mark.django_db
def test_idle_incidents_close_themselves(dispatcher: User) -> None:
    event = incident()
    Incident.objects.filter(pk=event.pk).update(updated_at=timezone.now() - timedelta(hours=13))
    assert actions.close_idle_incidents() == 1
    event.refresh_from_db()
    assert event.status == IncidentStatus.CLOSED
    assert "No activity" in event.timeline.last().reason  # type: ignore[union-attr]


@pytest.mark.django_db
def test_an_offer_not_yet_sent_is_withdrawn_silently_when_covered(dispatcher: User) -> None:
    event = incident()
    event.verifiers_needed = 1
    event.save()
    a, b = responder(at=FRUITVALE), responder(at=FRUITVALE)
    offers = actions.send_offers(actor=dispatcher, incident=event, responders=[a, b])
    actions.answer_offer(offer=offers[0], accept=True)  # before any SMS went out
    sms = Offer.objects.get(pk=offers[1].pk).sms
    assert sms is not None
    sms.refresh_from_db()
    assert sms.status == "expired"
    assert not OutboxMessage.objects.filter(kind=OutboxKind.NOTICE).exists()


@pytest.mark.django_db
def test_a_late_yes_after_the_decision_sends_nobody(client: Client, dispatcher: User) -> None:
    event = incident()
    person = responder(at=FRUITVALE)
    [offer] = actions.send_offers(actor=dispatcher, incident=event, responders=[person])
    outbox.send_due()
    incident_actions.change_status(
        actor=dispatcher, incident=event, status=IncidentStatus.FALSE, reason="fare inspectors"
    )
    offer.refresh_from_db()
    assert offer.status == OfferStatus.COVERED
    assert "no longer open" in reply(client, "SM1", f"YES {offer.code}", person.phone)


@pytest.mark.django_db
def test_closing_frees_the_codes_of_accepted_offers(dispatcher: User) -> None:
    event = incident()
    person = responder(at=FRUITVALE)
    [offer] = actions.send_offers(actor=dispatcher, incident=event, responders=[person])
    actions.answer_offer(offer=offer, accept=True)
    incident_actions.change_status(
        actor=dispatcher, incident=event, status=IncidentStatus.CLOSED, reason="over"
    )
    offer.refresh_from_db()
    assert offer.status == OfferStatus.DONE


@pytest.mark.django_db
def test_offers_follow_a_merge(dispatcher: User) -> None:
    from conftest import DOWNTOWN

    source, target = incident(), web_report(at=DOWNTOWN).incident
    assert target is not None
    person = responder(at=FRUITVALE)
    [offer] = actions.send_offers(actor=dispatcher, incident=source, responders=[person])
    actions.answer_offer(offer=offer, accept=True)
    incident_actions.merge_incidents(actor=dispatcher, source=source, target=target, reason="same")
    offer.refresh_from_db()
    assert offer.incident == target and offer.status == OfferStatus.ACCEPTED


@pytest.mark.django_db
def test_opted_out_or_turned_off_responders_are_not_offered(
    client: Client, dispatcher: User
) -> None:
    from datetime import timedelta as td

    from dispatch.matching import nearest_responders
    from dispatch.models import Shift

    event = incident()
    quiet = responder(at=FRUITVALE)
    reply(client, "SM1", "STOP", quiet.phone)
    on_shift = responder(at=FRUITVALE, available=False)
    now = timezone.now()
    Shift.objects.create(responder=on_shift, starts_at=now - td(hours=1), ends_at=now + td(hours=2))
    found = {c.responder for c in nearest_responders(event.point, role="verifier", language="en")}
    assert quiet not in found and on_shift in found
    reply(client, "SM2", "OFF", on_shift.phone)
    found = {c.responder for c in nearest_responders(event.point, role="verifier", language="en")}
    assert on_shift not in found
    with pytest.raises(actions.ActionRefused, match="no longer available"):
        actions.send_offers(actor=dispatcher, incident=event, responders=[on_shift])
    later = now + td(hours=3)
    assert on_shift not in {
        c.responder
        for c in nearest_responders(event.point, role="verifier", language="en", now=later)
    }

"""Volunteers sign up to go with a family: on their signed page or by texting
ACCOMPANY with the hearing's code. They see what they need (kind, date, place,
language) and nothing about the person or the case."""

from __future__ import annotations

import pytest
from django.core import signing
from django.test import Client

from accounts.models import Role, User
from cases import hearings
from cases.models import Accompaniment, AccompanimentStatus, HearingReminder
from cases.tests.hearing_factories import (
    A_NUMBER,
    add_hearing,
    close_case,
    in_days,
    make_case,
    make_contact,
    volunteer,
)
from conftest import make_user, post_twilio, sms_params
from dispatch.tests.factories import responder
from intake.models import Report
from messaging.models import InboundMessage

pytestmark = pytest.mark.django_db
SMS = "/hooks/twilio/sms"


@pytest.fixture
def fam() -> User:
    return make_user(Role.FAMILY_SUPPORT, username="fam")


def page_path(person: object) -> str:
    return hearings.volunteer_path(person)  # type: ignore[arg-type]


# The page


def test_the_page_shows_open_dates_without_anything_about_the_person(fam: User) -> None:
    case = make_case(opened_by=fam)
    make_contact(case, name="Rosa Lopez")
    hearing = add_hearing(case, actor=fam, place="ICE office, 630 Sansome St")
    vera = volunteer(languages=["es"])
    page = Client().get(page_path(vera))
    assert page.status_code == 200
    assert page["Cache-Control"].count("no-store") == 1
    html = page.content.decode()
    assert "ICE office, 630 Sansome St" in html
    assert "Spanish" in html
    assert hearing.code in html
    for secret in ("Maria", "Lopez", "Rosa", A_NUMBER, "I-220A", case.reference, str(case.uuid)):
        assert secret not in html


def test_sign_up_and_cancel_from_the_page(fam: User) -> None:
    case = make_case(opened_by=fam)
    hearing = add_hearing(case, actor=fam)
    vera = volunteer()
    client = Client()
    path = page_path(vera)
    response = client.post(path, {"step": "sign_up", "hearing": str(hearing.uuid)})
    assert response.status_code == 302
    accompaniment = Accompaniment.objects.get(hearing=hearing, responder=vera)
    assert accompaniment.status == AccompanimentStatus.SIGNED_UP
    assert HearingReminder.objects.filter(responder=vera, status="pending").count() == 2
    # Twice is once.
    client.post(path, {"step": "sign_up", "hearing": str(hearing.uuid)})
    assert Accompaniment.objects.filter(hearing=hearing).count() == 1
    assert "I can no longer go" in client.get(path).content.decode()
    client.post(path, {"step": "cancel", "hearing": str(hearing.uuid)})
    accompaniment.refresh_from_db()
    assert accompaniment.status == AccompanimentStatus.CANCELLED
    assert not HearingReminder.objects.filter(responder=vera, status="pending").exists()
    # And again after cancelling: the same row, signed up again.
    client.post(path, {"step": "sign_up", "hearing": str(hearing.uuid)})
    accompaniment.refresh_from_db()
    assert accompaniment.status == AccompanimentStatus.SIGNED_UP
    assert accompaniment.cancelled_at is None


@pytest.mark.parametrize(
    "data",
    [
        {"step": "sign_up", "hearing": "not-a-uuid"},
        {"step": "fly", "hearing": "00000000-0000-0000-0000-000000000000"},
        {"step": "sign_up", "hearing": "00000000-0000-0000-0000-000000000000"},
        {"step": "cancel", "hearing": "00000000-0000-0000-0000-000000000000"},
    ],
)
def test_bad_choices_are_refused_and_change_nothing(fam: User, data: dict[str, str]) -> None:
    case = make_case(opened_by=fam)
    add_hearing(case, actor=fam)
    vera = volunteer()
    response = Client().post(page_path(vera), data)
    assert response.status_code == 422
    assert 'role="alert"' in response.content.decode()
    assert not Accompaniment.objects.exists()


def test_closed_cases_and_cancelled_dates_are_not_open(fam: User) -> None:
    case = make_case(opened_by=fam)
    cancelled = add_hearing(case, actor=fam, place="Cancelled place")
    hearings.cancel_hearing(actor=fam, hearing=cancelled)
    closing = make_case(opened_by=fam)
    closed = add_hearing(closing, actor=fam, place="Closed place")
    close_case(closing)
    vera = volunteer()
    html = Client().get(page_path(vera)).content.decode()
    assert "Cancelled place" not in html and "Closed place" not in html
    for hearing in (cancelled, closed):
        response = Client().post(page_path(vera), {"step": "sign_up", "hearing": str(hearing.uuid)})
        assert response.status_code == 422
    assert not Accompaniment.objects.exists()


def test_only_accompaniment_volunteers_may_sign_up(fam: User) -> None:
    case = make_case(opened_by=fam)
    hearing = add_hearing(case, actor=fam, place="Court X")
    verifier = responder(roles=["verifier"], available=False)
    page = Client().get(page_path(verifier))
    assert "Court X" not in page.content.decode()
    response = Client().post(page_path(verifier), {"step": "sign_up", "hearing": str(hearing.uuid)})
    assert response.status_code == 422
    assert not Accompaniment.objects.exists()


def test_a_language_match_comes_first(fam: User) -> None:
    case = make_case(opened_by=fam)
    english = add_hearing(case, actor=fam, starts_at=in_days(2), language_needed="en")
    spanish = add_hearing(case, actor=fam, starts_at=in_days(5), language_needed="es")
    vera = volunteer(languages=["es"])
    _own, others = hearings.volunteer_view(vera)
    assert [item.uuid for item in others] == [spanish.uuid, english.uuid]


def test_forged_expired_and_inactive_links(fam: User, settings: object) -> None:
    vera = volunteer()
    path = page_path(vera)
    assert Client().get(path[:-3] + "xx/").status_code == 404
    # A dispatch availability link is signed for another purpose.
    other = signing.TimestampSigner(salt="dispatch.responder-link").sign(vera.uuid.hex)
    assert Client().get(f"/cases/volunteer/{other}/").status_code == 404
    settings.RR_RESPONDER_LINK_HOURS = 0  # type: ignore[attr-defined]
    assert Client().get(path).status_code == 410
    settings.RR_RESPONDER_LINK_HOURS = 24  # type: ignore[attr-defined]
    vera.active = False
    vera.save(update_fields=["active"])
    assert Client().get(path).status_code == 404


# By SMS


def text(body: str, sender: str, sid: str) -> str:
    response = post_twilio(Client(), SMS, sms_params(sid, body, sender=sender))
    assert response.status_code == 200
    return str(response.content.decode())


def test_accompany_with_the_code_signs_up(fam: User) -> None:
    case = make_case(opened_by=fam)
    hearing = add_hearing(case, actor=fam)
    vera = volunteer(phone="+15105550777")
    reply = text(f"ACCOMPANY {hearing.code}", vera.phone, "SM1")
    assert "signed up" in reply
    assert hearing.place in reply
    assert Accompaniment.objects.get(responder=vera).status == AccompanimentStatus.SIGNED_UP
    again = text(f"accompany {hearing.code}", vera.phone, "SM2")
    assert "already signed up" in again
    assert Accompaniment.objects.count() == 1
    assert not Report.objects.exists()


def test_accompany_alone_lists_open_dates(fam: User) -> None:
    case = make_case(opened_by=fam)
    hearing = add_hearing(case, actor=fam)
    vera = volunteer(phone="+15105550778")
    reply = text("Acompañar", vera.phone, "SM3")
    assert hearing.code in reply
    assert "/cases/volunteer/" in reply
    for secret in ("Maria", A_NUMBER):
        assert secret not in reply
    assert not Accompaniment.objects.exists()


def test_an_unknown_code_changes_nothing(fam: User) -> None:
    case = make_case(opened_by=fam)
    add_hearing(case, actor=fam)
    vera = volunteer(phone="+15105550779")
    reply = text("ACCOMPANY 0000", vera.phone, "SM4")
    assert "No open date has the code 0000" in reply
    assert not Accompaniment.objects.exists()


def test_a_stranger_is_told_and_a_sentence_is_a_report(fam: User) -> None:
    case = make_case(opened_by=fam)
    hearing = add_hearing(case, actor=fam)
    reply = text(f"ACCOMPANY {hearing.code}", "+15105550990", "SM5")
    assert "not registered as a volunteer" in reply
    assert not Accompaniment.objects.exists()
    text("Acompañar a mi hijo a la corte, lo detuvieron en la calle 5", "+15105550991", "SM6")
    message = InboundMessage.objects.get(provider_sid="SM6")
    assert message.kind == "report"
    assert not Accompaniment.objects.exists()


# Asking volunteers by SMS


def test_family_support_asks_volunteers_speakers_first_once_each(fam: User) -> None:
    from core import phones
    from messaging.models import OptOut, OutboxMessage

    case = make_case(opened_by=fam)
    hearing = add_hearing(case, actor=fam, language_needed="es")
    speakers = [volunteer(languages=["es"]) for _ in range(3)]
    others = [volunteer(languages=["en"]) for _ in range(hearings.INVITE_BATCH)]
    stopped = volunteer(languages=["es"])
    OptOut.objects.create(phone_hash=stopped.phone_hash)
    going = volunteer(languages=["es"])
    hearings.sign_up(responder=going, hearing=hearing)
    verifier = responder(roles=["verifier"], languages=["es"], available=False)

    client = Client()
    client.force_login(fam)
    url = f"/cases/hearings/{hearing.uuid}/invite/"
    assert client.post(url).status_code == 302
    first = list(OutboxMessage.objects.filter(dedupe_key__startswith="hearing-invite:"))
    assert len(first) == hearings.INVITE_BATCH
    asked = {m.recipient_hash for m in first}
    assert {s.phone_hash for s in speakers} <= asked
    for never in (stopped, going, verifier):
        assert phones.phone_hash(never.phone) not in asked
    body = first[0].text
    assert f"ACCOMPANY {hearing.code}" in body and hearing.place in body
    for secret in ("Maria", A_NUMBER, "I-220A"):
        assert secret not in body
    # Asking again reaches the rest, never the same volunteer twice.
    client.post(url)
    total = OutboxMessage.objects.filter(dedupe_key__startswith="hearing-invite:")
    assert total.count() == len(speakers) + len(others)
    assert total.values("recipient_hash").distinct().count() == total.count()
    third = client.post(url, follow=True)
    assert "asked already" in third.content.decode()
    assert total.count() == len(speakers) + len(others)

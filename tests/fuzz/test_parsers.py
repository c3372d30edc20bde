"""Property tests on everything that parses what strangers send: phone numbers, SMS
keywords and routing, a responder's field report, coordinates."""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

import pytest
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from conftest import FRUITVALE
from core import phones
from core.geo import InvalidCoordinates, Point, find_coordinates
from dispatch import actions as dispatch_actions
from dispatch.forms import FieldReportForm, LocationForm
from dispatch.models import FieldReport, Offer
from intake.actions import create_report_from_message
from intake.models import Report
from messaging import keywords
from messaging.actions import receive_sms
from messaging.models import InboundKind, InboundMessage
from tests.fuzz.settings import FUZZ, FUZZ_DB

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
# Text that looks like a phone number, as people write them.
phone_like = st.text(alphabet="0123456789 +-().x/*#ext", min_size=1, max_size=40)
any_text = st.text(max_size=200)

# Phone numbers


@FUZZ
@given(st.one_of(phone_like, any_text))
def test_normalize_is_e164_or_its_documented_error_and_idempotent(raw: str) -> None:
    try:
        e164 = phones.normalize(raw)
    except phones.InvalidPhoneNumber:
        return
    assert E164.match(e164), e164
    assert phones.normalize(e164) == e164


@FUZZ
@given(
    st.one_of(
        phone_like, any_text, st.from_regex(r"\+1 ?\(?510\)? ?555[- ]?01\d\d", fullmatch=True)
    )
)
def test_a_sender_has_one_canonical_form(raw: str) -> None:
    """Inbound senders are hashed in this form: one number must give one hash."""
    once = phones.normalize_sender(raw)
    assert phones.normalize_sender(once) == once
    assert len(once) <= phones.MAX_RAW_LENGTH


@FUZZ
@given(st.integers(min_value=0, max_value=60))
def test_padding_a_number_with_spaces_does_not_change_the_sender(spaces: int) -> None:
    written = "+1 (510) " + " " * spaces + "555-0123"
    assert phones.normalize_sender(written) == "+15105550123"


# SMS keywords and routing


@FUZZ
@given(any_text)
def test_keyword_match_never_raises(body: str) -> None:
    found = keywords.match(body)
    if found is not None:
        assert found.keyword.word in keywords.registered_words()
        assert found.keyword.word == keywords.canonical(body.split(maxsplit=1)[0])


@FUZZ
@given(st.sampled_from(["STOP", "stop", "Stop.", "AYUDA", "¡Ayúda!", "help", "START"]))
def test_carrier_keywords_match_alone(word: str) -> None:
    assert keywords.match(word) is not None
    # The same word inside a sentence is a report.
    assert keywords.match(f"{word} the agents are at the corner of 5th and Main") is None


_sids = itertools.count()


@pytest.mark.django_db
# Many examples share a sender; the per-sender limit (intake/throttle.py, tested on
# its own) would fold them into one report, which is not what this test is about.
@override_settings(RR_SMS_REPORTS_PER_SENDER=1_000_000)
@FUZZ_DB
@given(body=st.text(max_size=400), sender=st.one_of(phone_like, st.just("+15105550199")))
def test_any_text_is_a_keyword_or_reaches_intake_and_never_crashes(
    body: str, sender: str, service_area: Any
) -> None:
    received = receive_sms(
        provider="twilio",
        provider_sid=f"SMfuzz{next(_sids):026d}",
        sender=sender,
        recipient="+15105550000",
        body=body,
    )
    assert isinstance(received.reply, str) and received.reply.strip()
    message = InboundMessage.objects.order_by("-pk").first()
    assert message is not None
    assert message.kind in {InboundKind.KEYWORD, InboundKind.REPORT, InboundKind.EMPTY}
    if message.kind == InboundKind.EMPTY:
        assert not body.strip()
        return
    if message.kind == InboundKind.KEYWORD:
        assert keywords.match(body) is not None
        return
    # Intake's task (run here as the worker would) makes exactly one report of it.
    report = create_report_from_message(message_id=message.pk)
    assert report is not None
    assert Report.objects.filter(inbound_message=message).count() == 1
    assert Report.objects.get(pk=report.pk).text == message.body
    assert create_report_from_message(message_id=message.pk) is None


# A responder's field report (SALUTE)

field_value = st.one_of(st.text(max_size=600), st.sampled_from(["", "0", "-1", "501", "1e3"]))
salute_form = st.fixed_dictionaries(
    dict.fromkeys(
        [
            "finding",
            "officers",
            "vehicles",
            "detentions",
            "agencies",
            "notes",
            *(f"salute_{part}" for part in dispatch_actions.SALUTE),
        ],
        field_value,
    )
)


@pytest.fixture
def accepted_offer(service_area: Any, dispatcher: Any) -> Offer:
    from dispatch.tests.factories import responder
    from intake.tests.factories import web_report

    report = web_report("agents at the bus stop", at=FRUITVALE, where="International & 35th")
    assert report.incident is not None
    person = responder(at=FRUITVALE)
    (offer,) = dispatch_actions.send_offers(
        actor=dispatcher, incident=report.incident, responders=[person]
    )
    dispatch_actions.answer_offer(offer=offer, accept=True)
    offer.refresh_from_db()
    return offer


@pytest.mark.django_db
@FUZZ_DB
@given(post=salute_form)
def test_a_field_report_form_either_saves_what_it_says_or_lists_errors(
    post: dict[str, str], accepted_offer: Offer
) -> None:
    form = FieldReportForm(post)
    if not form.is_valid():
        assert form.errors
        return
    data = form.cleaned_data
    dispatch_actions.save_field_report(
        offer=accepted_offer,
        data=dispatch_actions.FieldData(
            finding=data["finding"],
            salute={part: data[f"salute_{part}"] for part in dispatch_actions.SALUTE},
            agencies=data["agencies"],
            officers=data["officers"],
            vehicles=data["vehicles"],
            detentions=data["detentions"],
            notes=data["notes"],
        ),
    )
    saved = FieldReport.objects.get(offer=accepted_offer)
    for part in dispatch_actions.SALUTE:
        if data[f"salute_{part}"]:
            assert getattr(saved, f"salute_{part}") == data[f"salute_{part}"]
    if data["notes"]:
        assert saved.notes == data["notes"]
    if data["officers"] is not None:
        assert saved.officers == data["officers"]


# Coordinates

finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=64)


@FUZZ
@given(lat=finite_or_not, lng=finite_or_not)
def test_impossible_coordinates_are_rejected(lat: float, lng: float) -> None:
    possible = math.isfinite(lat) and math.isfinite(lng) and -90 <= lat <= 90 and -180 <= lng <= 180
    try:
        point = Point(lat, lng)
    except InvalidCoordinates:
        assert not possible
    else:
        assert possible
        assert point.cell(8) > 0


@FUZZ
@given(
    lat=st.one_of(any_text, finite_or_not.map(str)), lng=st.one_of(any_text, finite_or_not.map(str))
)
def test_parsed_coordinates_are_a_place_or_the_documented_error(lat: str, lng: str) -> None:
    try:
        point = Point.parse(lat, lng)
    except InvalidCoordinates:
        form = LocationForm({"lat": lat, "lng": lng})
        assert not form.is_valid()
        return
    assert -90 <= point.lat <= 90 and -180 <= point.lng <= 180


@FUZZ
@given(
    st.one_of(
        any_text,
        st.builds(
            lambda a, b, pre: f"{pre} https://maps.google.com/?q={a},{b} ",
            finite_or_not,
            finite_or_not,
            any_text,
        ),
        st.builds(lambda a, b: f"geo:{a},{b}", finite_or_not, finite_or_not),
    )
)
def test_coordinates_found_in_text_are_always_a_real_place(text: str) -> None:
    point = find_coordinates(text)
    if point is not None:
        assert math.isfinite(point.lat) and -90 <= point.lat <= 90
        assert math.isfinite(point.lng) and -180 <= point.lng <= 180

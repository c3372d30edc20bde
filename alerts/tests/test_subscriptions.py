"""Signing up and stopping: keywords by SMS (CTIA), double opt-in, the web code."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import h3
import pytest
from django.test import Client
from django.utils import timezone

from alerts import subscriptions
from alerts.models import AreaKind, Subscriber, SubscriberCell, SubscriberStatus, ZipCode
from alerts.tests.factories import subscriber
from alerts.zipcodes import InvalidZipFile, load_zip_codes, parse_zip_csv
from conftest import FRUITVALE, OUTSIDE_AREA, committed, post_twilio, sms_params
from core import phones
from core.geo import Point, polygons_of
from core.models import Neighbourhood
from intake.models import Report
from messaging import outbox
from messaging.models import OptOut, OutboxKind, OutboxMessage

HOOK = "/hooks/twilio/sms"
PHONE = "+15105550777"
DEMO_ZIPS = Path(__file__).resolve().parents[2] / "demo" / "zip_codes.csv"
_sids = iter(range(10_000, 99_999))


def text(client: Client, body: str, sender: str = PHONE) -> str:
    response = post_twilio(client, HOOK, sms_params(f"SM{next(_sids)}", body, sender=sender))
    assert response.status_code == 200
    found = re.search(r"<Message>(.*)</Message>", response.content.decode(), re.S)
    return found.group(1) if found else ""


def the_subscriber(phone: str = PHONE) -> Subscriber | None:
    return Subscriber.objects.filter(phone_hash=phones.phone_hash(phone)).first()


def _shape(name: str) -> h3.LatLngPoly:
    [polygon] = polygons_of(Neighbourhood.objects.get(name=name).geometry)
    return h3.LatLngPoly([(lat, lng) for lng, lat, *_ in polygon[0]])


@pytest.fixture
def zips(service_area: Any) -> None:
    load_zip_codes(parse_zip_csv(DEMO_ZIPS.read_text(encoding="utf-8")))


@pytest.mark.django_db
def test_join_with_a_neighbourhood_then_yes(client: Client, zips: None) -> None:
    answer = text(client, "JOIN Fruitvale")
    assert "reply YES" in answer and "Fruitvale" in answer and "STOP" in answer
    person = the_subscriber()
    assert person is not None and person.status == SubscriberStatus.PENDING
    # Every cell touching the neighbourhood, more than those centred inside it.
    centred = h3.polygon_to_cells(_shape("Fruitvale"), 8)
    assert person.cells.count() > len(centred) > 0
    assert "verified alerts for Fruitvale" in text(client, "YES")
    person.refresh_from_db()
    assert person.status == SubscriberStatus.ACTIVE and person.confirmed_at is not None
    assert not Report.objects.exists()


@pytest.mark.django_db
def test_alerta_with_a_zip_code_in_spanish_confirmed_by_si(client: Client, zips: None) -> None:
    answer = text(client, "ALERTA 94601")
    assert "responda SI" in answer or "Responda SI" in answer, answer
    person = the_subscriber()
    assert person is not None and person.language == "es"
    assert person.areas.get().kind == AreaKind.ZIP
    confirmed = text(client, "Sí")
    assert "alertas verificadas" in confirmed and "94601" in confirmed
    person.refresh_from_db()
    assert person.status == SubscriberStatus.ACTIVE
    assert not Report.objects.exists()


@pytest.mark.django_db
def test_accents_and_case_do_not_matter_for_the_area(client: Client, zips: None) -> None:
    text(client, "join  SAN ANTONIO!")
    person = the_subscriber()
    assert person is not None
    hood = person.areas.get().neighbourhood
    assert hood is not None and hood.name == "San Antonio"


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["JOIN", "JOIN Atlantis", "SUBSCRIBE 99999"])
def test_join_without_a_known_area_explains_and_subscribes_nobody(
    client: Client, zips: None, body: str
) -> None:
    answer = text(client, body)
    assert "JOIN Fruitvale" in answer
    assert not Subscriber.objects.exists()
    assert not Report.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        "ALERTA migra deteniendo gente en la International y 35",
        "¡ALERTA!",
        "alerta 99999 agentes en la escuela",
        "ALERTAS",
    ],
)
def test_alerta_without_an_area_is_a_report_not_a_sign_up(
    client: Client, zips: None, body: str
) -> None:
    answer = text(client, body)
    assert "recibió su reporte" in answer or "received your report" in answer
    assert [r.text for r in Report.objects.all()] == [body]
    assert not Subscriber.objects.exists()


@pytest.mark.django_db
def test_alerta_with_an_area_signs_up_and_says_how_to_report(client: Client, zips: None) -> None:
    answer = text(client, "ALERTA Fruitvale")
    assert "Para reportar algo que pasa ahora" in answer
    assert Subscriber.objects.count() == 1


@pytest.mark.django_db
def test_a_bare_si_from_someone_not_signing_up_is_a_message_to_the_hotline(client: Client) -> None:
    answer = text(client, "Si")
    assert "recibió su reporte" in answer or "received your report" in answer
    assert Report.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "word",
    [
        "STOP",
        "stop",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "OPTOUT",
        "REVOKE",
        "PARAR",
        "Alto",
        "CANCELAR",
        "DETENER",
        "baja",
    ],
)
def test_carrier_stop_words_stop_at_once_with_one_confirmation(
    client: Client, zips: None, word: str
) -> None:
    subscriber(at=FRUITVALE, phone=PHONE)
    answer = text(client, word)
    assert "no more messages" in answer or "no recibirá" in answer
    person = the_subscriber()
    assert person is not None and person.status == SubscriberStatus.STOPPED
    assert OptOut.objects.filter(phone_hash=person.phone_hash).exists()
    # The one confirmation is the reply itself; a second STOP is not answered again.
    assert text(client, word) == ""
    assert not Report.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("word", ["START", "UNSTOP", "YES", "INICIAR", "Reanudar"])
def test_start_words_resubscribe(client: Client, zips: None, word: str) -> None:
    subscriber(at=FRUITVALE, phone=PHONE)
    text(client, "STOP")
    answer = text(client, word)
    assert "verified alerts" in answer
    person = the_subscriber()
    assert person is not None and person.status == SubscriberStatus.ACTIVE
    assert not OptOut.objects.filter(phone_hash=person.phone_hash).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("word", ["HELP", "INFO", "AYUDA"])
def test_help_and_info_name_the_network_and_how_to_stop(client: Client, word: str) -> None:
    answer = text(client, word)
    assert "Test Rapid Response" in answer
    assert "STOP" in answer or "PARAR" in answer
    assert not Report.objects.exists()


@pytest.mark.django_db
def test_a_provider_opt_out_error_stops_the_subscriber(twilio_api: Any, service_area: Any) -> None:
    person = subscriber(at=FRUITVALE, phone=PHONE)
    twilio_api.fail_next(1, status=400, code=21610)
    with committed():
        outbox.queue_sms(to=PHONE, body="hello", language="en", kind=OutboxKind.ALERT)
    person.refresh_from_db()
    assert person.status == SubscriberStatus.STOPPED


@pytest.mark.django_db
def test_a_21610_status_callback_stops_the_subscriber(client: Client, service_area: Any) -> None:
    person = subscriber(at=FRUITVALE, phone=PHONE)
    with committed():
        message = outbox.queue_sms(to=PHONE, body="hello", language="en", kind=OutboxKind.ALERT)
    message.refresh_from_db()
    params = {
        "MessageSid": str(message.provider_sid),
        "MessageStatus": "undelivered",
        "ErrorCode": "21610",
        "AccountSid": "ACtest",
    }
    assert post_twilio(client, "/hooks/twilio/status", params).status_code in {200, 204}
    person.refresh_from_db()
    assert person.status == SubscriberStatus.STOPPED


# The public page


def _join(client: Client, **fields: str) -> Any:
    data = {"phone": "(510) 555-0777", "language": "es", "consent": "on", **fields}
    with committed():
        return client.post("/join/?lang=es", data)


def _sent_code() -> str:
    message = OutboxMessage.objects.filter(kind=OutboxKind.SUBSCRIPTION).latest("created_at")
    found = re.search(r"\b(\d{6})\b", message.text)
    assert found is not None
    return found.group(1)


@pytest.mark.django_db
def test_the_web_page_sends_a_code_that_confirms(client: Client, zips: None) -> None:
    page = client.get("/join/?lang=es")
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    response = _join(client, zip_code="94606")
    assert response.status_code == 200
    assert 'name="code"' in response.content.decode()
    person = the_subscriber()
    assert person is not None and person.status == SubscriberStatus.PENDING
    assert person.language == "es"
    code = _sent_code()
    sms = OutboxMessage.objects.get(kind=OutboxKind.SUBSCRIPTION)
    assert sms.language == "es" and "código" in sms.text
    done = client.post("/join/confirm/?lang=es", {"phone": "+15105550777", "code": code})
    assert done.status_code == 200 and "94606" in done.content.decode()
    person.refresh_from_db()
    assert person.status == SubscriberStatus.ACTIVE


@pytest.mark.django_db
def test_a_pin_and_a_radius_become_cells_around_it_once_confirmed(
    client: Client, zips: None
) -> None:
    pin = (FRUITVALE[0] + 0.000123, FRUITVALE[1] - 0.000456)
    response = _join(client, lat=str(pin[0]), lng=str(pin[1]), radius_m="1000")
    assert response.status_code == 200
    person = the_subscriber()
    assert person is not None and not person.areas.exists()  # nothing until the code
    client.post("/join/confirm/", {"phone": PHONE, "code": _sent_code()})
    area = person.areas.get()
    assert area.kind == AreaKind.RADIUS and area.radius_m == 1000
    # Kept to about 100 m: enough to send alerts by, not a home address.
    assert (area.lat, area.lng) == (round(pin[0], 3), round(pin[1], 3))
    assert SubscriberCell.objects.filter(
        subscriber=person, h3_cell=Point(*FRUITVALE).cell(8)
    ).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({}, "Elija un vecindario"),
        ({"zip_code": "10001"}, "código postal"),
        ({"lat": "91", "lng": "0"}, "no es válida"),
        ({"lat": str(OUTSIDE_AREA[0]), "lng": str(OUTSIDE_AREA[1])}, "fuera"),
        ({"zip_code": "94601", "phone": "12"}, "número de teléfono"),
        ({"zip_code": "94601", "consent": ""}, "Marque la casilla"),
    ],
)
def test_bad_sign_ups_are_refused_clearly_and_change_nothing(
    client: Client, zips: None, fields: dict[str, str], problem: str
) -> None:
    response = _join(client, **fields)
    assert response.status_code == 422
    assert problem in response.content.decode()
    assert not Subscriber.objects.exists()
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_a_wrong_or_expired_code_does_not_confirm(client: Client, zips: None) -> None:
    _join(client, zip_code="94601")
    code = _sent_code()
    wrong = "000000" if code != "000000" else "111111"
    response = client.post("/join/confirm/", {"phone": PHONE, "code": wrong})
    assert response.status_code == 422
    person = the_subscriber()
    assert person is not None and person.status == SubscriberStatus.PENDING
    Subscriber.objects.filter(pk=person.pk).update(
        code_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert client.post("/join/confirm/", {"phone": PHONE, "code": code}).status_code == 422
    person.refresh_from_db()
    assert person.status == SubscriberStatus.PENDING


@pytest.mark.django_db
def test_five_wrong_codes_lock_the_code(client: Client, zips: None) -> None:
    _join(client, zip_code="94601")
    code = _sent_code()
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        client.post("/join/confirm/", {"phone": PHONE, "code": wrong})
    assert client.post("/join/confirm/", {"phone": PHONE, "code": code}).status_code == 422
    person = the_subscriber()
    assert person is not None and person.status == SubscriberStatus.PENDING


@pytest.mark.django_db
def test_one_number_gets_at_most_three_codes_an_hour(client: Client, zips: None) -> None:
    for _ in range(3):
        assert _join(client, zip_code="94601").status_code == 200
    limited = _join(client, zip_code="94601")
    assert limited.status_code == 429 and limited["Retry-After"]
    assert OutboxMessage.objects.filter(kind=OutboxKind.SUBSCRIPTION).count() == 3


@pytest.mark.django_db
def test_sign_ups_from_one_address_are_limited(client: Client, zips: None, settings: Any) -> None:
    settings.RR_SUBSCRIBE_PER_HOUR = 2
    assert _join(client, zip_code="94601", phone="+15105550701").status_code == 200
    assert _join(client, zip_code="94601", phone="+15105550702").status_code == 200
    assert _join(client, zip_code="94601", phone="+15105550703").status_code == 429
    assert Subscriber.objects.count() == 2


@pytest.mark.django_db
def test_a_stopped_number_signing_up_again_starts_pending(zips: None) -> None:
    person = subscriber(at=FRUITVALE, phone=PHONE)
    subscriptions.stop(phone_hash=person.phone_hash)
    again = subscriptions.subscribe(
        phone=PHONE,
        language="en",
        areas=[subscriptions.AreaSpec(AreaKind.RADIUS, point=Point(*FRUITVALE), radius_m=300)],
    )
    assert again.pk == person.pk and again.status == SubscriberStatus.PENDING
    assert again.areas.count() == 2


# ZIP code files


@pytest.mark.parametrize(
    ("csv_text", "problem"),
    [
        ("zip,lat,lng\n94601,37.7,-122.2\n", "columns code"),
        ("code,lat,lng\n9460,37.7,-122.2\n", "five-digit"),
        ("code,lat,lng\n94601,37.7,-122.2\n94601,37.7,-122.2\n", "twice"),
        ("code,lat,lng\n94601,97.7,-122.2\n", "coordinates"),
        ("code,lat,lng,radius_m\n94601,37.7,-122.2,50\n", "between 200"),
        ("code,lat,lng\n", "no ZIP codes"),
    ],
)
def test_bad_zip_files_are_refused(csv_text: str, problem: str) -> None:
    with pytest.raises(InvalidZipFile, match=problem):
        parse_zip_csv(csv_text)


@pytest.mark.django_db
def test_loading_zip_codes_twice_updates_them() -> None:
    load_zip_codes(parse_zip_csv("code,lat,lng\n94601,37.77,-122.22\n"))
    load_zip_codes(parse_zip_csv("code,lat,lng,radius_m\n94601,37.78,-122.21,3000\n"))
    code = ZipCode.objects.get()
    assert (code.lat, code.radius_m) == (37.78, 3000)


@pytest.mark.django_db
def test_someone_else_typing_an_active_number_changes_nothing_without_the_code(
    client: Client, zips: None
) -> None:
    person = subscriber(at=FRUITVALE, phone=PHONE, language="en")
    cells = set(person.cells.values_list("h3_cell", flat=True))
    _join(client, zip_code="94607")  # someone asks for Spanish alerts for West Oakland
    person.refresh_from_db()
    assert person.status == SubscriberStatus.ACTIVE and person.language == "en"
    assert set(person.cells.values_list("h3_cell", flat=True)) == cells
    assert person.areas.count() == 1
    # The phone's owner gets the code; entering it applies the change.
    code = _sent_code()
    assert client.post("/join/confirm/", {"phone": PHONE, "code": code}).status_code == 200
    person.refresh_from_db()
    assert person.language == "es" and person.areas.count() == 2
    assert person.pending_change == {}


@pytest.mark.django_db
def test_a_stranger_on_the_web_cannot_change_a_pending_sms_sign_up(
    client: Client, zips: None
) -> None:
    text(client, "JOIN Fruitvale")
    _join(client, zip_code="94607")  # someone else, with the same number, in Spanish
    text(client, "YES")
    person = the_subscriber()
    assert person is not None and person.status == SubscriberStatus.ACTIVE
    assert person.language == "en" and person.areas.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("word", ["YES", "START", "Si"])
def test_a_web_sign_up_is_confirmed_only_by_its_code(client: Client, zips: None, word: str) -> None:
    _join(client, zip_code="94601")
    text(client, word)
    person = the_subscriber()
    assert person is not None and person.status == SubscriberStatus.PENDING


@pytest.mark.django_db
def test_a_number_that_texted_stop_is_told_to_text_start_first(client: Client, zips: None) -> None:
    text(client, "STOP")
    response = _join(client, zip_code="94601")
    assert response.status_code == 422 and "START" in response.content.decode()
    assert not OutboxMessage.objects.filter(kind=OutboxKind.SUBSCRIPTION).exists()


@pytest.mark.django_db
def test_only_numbers_of_the_networks_country_get_codes(client: Client, zips: None) -> None:
    response = _join(client, zip_code="94601", phone="+44 7400 123456")
    assert response.status_code == 422
    assert "este país" in response.content.decode()
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_the_page_sends_a_bounded_number_of_codes_in_all(
    client: Client, zips: None, settings: Any
) -> None:
    settings.RR_SIGNUP_CODES_PER_HOUR = 2
    settings.RR_SUBSCRIBE_PER_HOUR = 100
    assert _join(client, zip_code="94601", phone="+15105550711").status_code == 200
    assert _join(client, zip_code="94601", phone="+15105550712").status_code == 200
    assert _join(client, zip_code="94601", phone="+15105550713").status_code == 429
    assert OutboxMessage.objects.filter(kind=OutboxKind.SUBSCRIPTION).count() == 2


@pytest.mark.django_db
def test_no_code_is_sent_when_the_counter_store_is_down(
    client: Client, zips: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("cache down")

    monkeypatch.setattr("core.ratelimit.cache.incr", broken)
    monkeypatch.setattr("core.ratelimit.cache.add", broken)
    assert _join(client, zip_code="94601").status_code == 429
    assert not OutboxMessage.objects.exists()

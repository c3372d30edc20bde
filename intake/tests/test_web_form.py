"""The public report form: it works in both languages, keeps nothing that identifies the
reporter beyond what they choose to give, and turns bad input into clear errors."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.utils import timezone
from PIL import Image

from conftest import FRUITVALE, OUTSIDE_AREA, committed
from core import crypto
from incidents.models import Incident
from intake.actions import photo_context
from intake.models import Report, ReportPhoto, ReportStatus
from intake.tests.pow import solved_payload

CLIENT_IP = "203.0.113.77"


def form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "text": "Two unmarked SUVs and agents in vests outside the laundromat",
        "location_text": "International Blvd & 35th Ave",
        "lat": "",
        "lng": "",
        "observed_at": "",
        "callback": "",
        "submission": str(uuid.uuid4()),
        "altcha": solved_payload(),
    }
    data.update(overrides)
    return data


def submit(client: Client, data: dict[str, Any], **extra: Any) -> Any:
    extra.setdefault("REMOTE_ADDR", CLIENT_IP)
    with committed():
        return client.post("/report/", data, **extra)


@pytest.mark.django_db
class TestForm:
    def test_the_form_is_in_english_and_spanish(self, client: Client) -> None:
        english = client.get("/report/")
        assert english.status_code == 200
        assert b"What is happening?" in english.content
        spanish = client.get("/report/?lang=es")
        assert "¿Qué está pasando?".encode() in spanish.content
        assert spanish["Content-Language"] == "es"
        by_browser = client.get("/report/", HTTP_ACCEPT_LANGUAGE="es-MX,es;q=0.9")
        assert by_browser["Content-Language"] == "es"

    @pytest.mark.parametrize("lang", ["xx", "fr", "", "es-ZZ-extra"])
    def test_unknown_languages_fall_back(self, client: Client, lang: str) -> None:
        response = client.get(f"/report/?lang={lang}")
        assert response.status_code == 200
        assert response["Content-Language"] in {"en", "es"}

    def test_no_cookie_but_csrf(self, client: Client) -> None:
        client.get("/report/")
        response = submit(client, form())
        assert set(client.cookies.keys()) <= {"csrftoken"}
        assert "sessionid" not in response.cookies

    def test_a_located_report_opens_an_incident(self, client: Client, service_area: Any) -> None:
        response = submit(client, form(lat=str(FRUITVALE[0]), lng=str(FRUITVALE[1])))
        assert response.status_code == 302
        assert response["Location"].startswith("/report/thanks/")
        report = Report.objects.get()
        assert report.channel == "web"
        assert report.status == ReportStatus.ATTACHED
        assert report.neighbourhood is not None and report.neighbourhood.name == "Fruitvale"
        assert Incident.objects.count() == 1
        thanks = client.get(response["Location"])
        assert thanks.status_code == 200 and b"received" in thanks.content
        assert "public" in thanks["Cache-Control"]

    def test_a_report_described_only_in_words_waits_to_be_placed(self, client: Client) -> None:
        submit(client, form())
        report = Report.objects.get()
        assert report.status == ReportStatus.UNPLACED
        assert report.location_text == "International Blvd & 35th Ave"

    def test_salute_details_are_kept(self, client: Client) -> None:
        submit(
            client,
            form(
                salute_size="6 agents",
                salute_uniform="POLICE ICE vests",
                salute_equipment="grey SUV",
            ),
        )
        report = Report.objects.get()
        assert report.salute_size == "6 agents"
        assert dict(report.salute)["Uniform"] == "POLICE ICE vests"

    def test_a_double_submission_is_one_report(self, client: Client) -> None:
        data = form()
        submit(client, data)
        second = submit(client, data)
        assert second.status_code == 302
        assert Report.objects.count() == 1

    def test_the_callback_number_is_encrypted(self, client: Client) -> None:
        submit(client, form(callback="(510) 555-0142"))
        report = Report.objects.get()
        assert report.reporter_contact == "+15105550142"
        with connection.cursor() as cursor:
            cursor.execute("SELECT reporter_contact FROM intake_report")
            stored = cursor.fetchone()[0]
        # Whole number: "+" is not in the ciphertext's URL-safe alphabet,
        # while seven digits could occur in it by chance.
        assert stored.startswith("rr1.") and "+15105550142" not in stored

    def test_spanish_reports_are_recorded_as_spanish(self, client: Client) -> None:
        submit(client, form(text="Hay agentes de inmigración deteniendo gente en la parada"))
        assert Report.objects.get().language == "es"

    def test_a_past_time_is_used_for_grouping(self, client: Client) -> None:
        earlier = timezone.localtime() - timedelta(minutes=40)
        submit(client, form(observed_at=earlier.strftime("%Y-%m-%dT%H:%M")))
        observed = Report.objects.get().observed_at
        assert abs((observed - earlier).total_seconds()) < 60


@pytest.mark.django_db
class TestBadInput:
    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"text": ""}, b"This field is required"),
            ({"location_text": ""}, b"Tell us where"),
            ({"lat": "91", "lng": "10"}, b"not valid"),
            ({"lat": "abc", "lng": "-122.2"}, b"not valid"),
            ({"lat": "37.7", "lng": ""}, b"not valid"),
            ({"callback": "call me"}, b"does not look like a phone number"),
            ({"observed_at": "2020-01-01T10:00"}, b"more than a week ago"),
            ({"observed_at": "yesterday"}, b"Enter a valid date/time"),
            ({"text": "x" * 2001}, b"at most 2000 characters"),
        ],
    )
    def test_bad_input_is_a_clear_error_and_nothing_is_stored(
        self, client: Client, overrides: dict[str, str], message: bytes
    ) -> None:
        response = submit(client, form(**overrides))
        assert response.status_code == 422
        assert message in response.content
        assert not Report.objects.exists()

    def test_a_future_time_is_refused(self, client: Client) -> None:
        later = timezone.localtime() + timedelta(hours=2)
        response = submit(client, form(observed_at=later.strftime("%Y-%m-%dT%H:%M")))
        assert response.status_code == 422
        assert b"in the future" in response.content

    @pytest.mark.parametrize("token", ["not-a-uuid", "", "x" * 64])
    def test_a_damaged_submission_token_still_files_the_report(
        self, client: Client, token: str
    ) -> None:
        assert submit(client, form(submission=token)).status_code == 302
        assert Report.objects.count() == 1

    def test_a_pin_outside_the_area_is_refused(self, client: Client, service_area: Any) -> None:
        response = submit(client, form(lat=str(OUTSIDE_AREA[0]), lng=str(OUTSIDE_AREA[1])))
        assert response.status_code == 422
        assert b"outside the area" in response.content
        assert not Report.objects.exists()

    def test_errors_keep_what_was_typed(self, client: Client) -> None:
        response = submit(client, form(text="agents at the school", callback="nope"))
        assert b"agents at the school" in response.content

    def test_an_oversized_request_is_413(self, client: Client, settings: Any) -> None:
        settings.RR_MAX_BODY_BYTES = 1000
        response = submit(client, form(text="x" * 1500))
        assert response.status_code == 413
        assert not Report.objects.exists()

    def test_too_many_reports_from_one_client_are_429(self, client: Client, settings: Any) -> None:
        settings.RR_WEB_REPORTS_PER_HOUR = 3
        statuses = [submit(client, form()).status_code for _ in range(4)]
        assert statuses == [302, 302, 302, 429]
        assert Report.objects.count() == 3
        other = submit(client, form(), REMOTE_ADDR="198.51.100.9")
        assert other.status_code == 302


def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (64, 48), "orange")
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (37.0, 46.0, 36.0), 3: "W", 4: (122.0, 13.0, 35.0)}  # GPS
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


@pytest.mark.django_db
class TestPhotos:
    def test_a_photo_is_stored_encrypted_without_its_metadata(self, client: Client) -> None:
        raw = jpeg_with_gps()
        assert b"PhoneMaker" in raw
        upload = SimpleUploadedFile("p.jpg", raw, content_type="image/jpeg")
        response = submit(client, form(photo=upload))
        assert response.status_code == 302
        photo = ReportPhoto.objects.get()
        with photo.file.open("rb") as handle:
            sealed = handle.read()
        assert b"JFIF" not in sealed and b"PhoneMaker" not in sealed
        clean = crypto.decrypt_bytes(sealed, context=photo_context(photo))
        reopened = Image.open(io.BytesIO(clean))
        assert (reopened.width, reopened.height) == (64, 48)
        assert not reopened.getexif()
        assert b"PhoneMaker" not in clean

    def test_dispatchers_can_view_the_photo_and_the_view_is_audited(
        self, client: Client, dispatcher_client: Client
    ) -> None:
        submit(client, form(photo=SimpleUploadedFile("p.jpg", jpeg_with_gps())))
        photo = ReportPhoto.objects.get()
        response = dispatcher_client.get(
            f"/console/reports/{photo.report.uuid}/photos/{photo.uuid}/"
        )
        assert response.status_code == 200
        assert response["Content-Type"] == "image/jpeg"
        assert response.content.startswith(b"\xff\xd8")

    @pytest.mark.parametrize(
        ("name", "content"),
        [
            ("notes.txt", b"just text"),
            ("fake.jpg", b"\xff\xd8\xff\xe0 broken"),
            ("x.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
        ],
    )
    def test_files_that_are_not_photos_are_refused(
        self, client: Client, name: str, content: bytes
    ) -> None:
        response = submit(client, form(photo=SimpleUploadedFile(name, content)))
        assert response.status_code == 422
        assert not Report.objects.exists()

    def test_an_oversized_photo_is_refused(self, client: Client, settings: Any) -> None:
        settings.RR_MAX_PHOTO_BYTES = 100
        response = submit(client, form(photo=SimpleUploadedFile("p.jpg", jpeg_with_gps())))
        assert response.status_code == 422
        assert b"larger than" in response.content


@pytest.mark.django_db(transaction=True)
def test_the_reporters_address_is_stored_nowhere(client: Client) -> None:
    submit(client, form(callback="+15105550142", lat="", lng=""))
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        for table in tables:
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from introspection
            for row in cursor.fetchall():
                assert CLIENT_IP not in repr(row), table


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (
            "multipart/form-data; boundary=xyz",
            b"--xyz\r\nContent-Disposition: form-data\r\n\r\nbroken",
        ),
        ("multipart/form-data", b"no boundary at all"),
        ("application/x-www-form-urlencoded", b"text=%ZZ%%&&==submission"),
        ("application/json", b'{"text": "agents"}'),
    ],
)
def test_malformed_posts_are_client_errors_and_store_nothing(
    client: Client, content_type: str, body: bytes
) -> None:
    response = client.generic("POST", "/report/", body, content_type=content_type)
    assert 400 <= response.status_code < 500
    assert not Report.objects.exists()

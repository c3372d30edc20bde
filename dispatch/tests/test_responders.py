"""Coordinators manage responders; a CSV import is all or nothing, with every bad row
named by its line."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from accounts.models import Role, User
from conftest import committed, make_user
from core import phones
from dispatch.models import ImportStatus, Responder, ResponderImport
from dispatch.tests.factories import responder


def staff(role: Role) -> Client:
    client = Client()
    client.force_login(make_user(role))
    return client


FORM = {
    "name": "Ana Reyes",
    "phone": "(510) 555-0133",
    "roles": ["verifier", "legal_observer"],
    "languages": ["es", "en"],
    "notes": "Has a car.",
    "active": "on",
}


@pytest.mark.django_db
def test_a_coordinator_adds_and_edits_a_responder() -> None:
    client = staff(Role.COORDINATOR)
    response = client.post("/dispatch/responders/new/", FORM)
    assert response.status_code == 302
    person = Responder.objects.get()
    assert person.name == "Ana Reyes" and person.phone == "+15105550133"
    assert person.phone_hash == phones.phone_hash("+15105550133")
    assert person.has_role("legal_observer") and person.speaks("es")
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, phone, notes FROM dispatch_responder")
        stored = cursor.fetchone()
    # Ciphertext is URL-safe base64, which can spell a short word by chance,
    # so look for whole values: their spaces and "+" never occur in it.
    assert all(value.startswith("rr1.") for value in stored)
    row = " ".join(stored)
    assert "Ana Reyes" not in row and "+15105550133" not in row and "Has a car." not in row
    client.post(f"/dispatch/responders/{person.uuid}/", {**FORM, "active": ""})
    person.refresh_from_db()
    assert not person.active and not person.available


@pytest.mark.django_db
def test_duplicate_numbers_and_bad_input_are_refused() -> None:
    client = staff(Role.COORDINATOR)
    client.post("/dispatch/responders/new/", FORM)
    again = client.post("/dispatch/responders/new/", {**FORM, "phone": "510-555-0133"})
    assert again.status_code == 422 and b"already has this phone number" in again.content
    bad: dict[str, Any]
    for bad in ({"phone": "nope"}, {"roles": []}, {"languages": ["xx"]}, {"name": ""}):
        response = client.post(
            "/dispatch/responders/new/", {**FORM, "phone": "+15105550144", **bad}
        )
        assert response.status_code == 422
    assert Responder.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "list_status", "new_status"),
    [
        (Role.COORDINATOR, 200, 200),
        (Role.DISPATCHER, 200, 403),
        (Role.VERIFIER, 403, 403),
        (Role.FAMILY_SUPPORT, 403, 403),
    ],
)
def test_who_may_see_and_change_responders(role: Role, list_status: int, new_status: int) -> None:
    client = staff(role)
    assert client.get("/dispatch/responders/").status_code == list_status
    assert client.get("/dispatch/responders/new/").status_code == new_status
    person = responder()
    response = client.post(
        f"/dispatch/responders/{person.uuid}/", {**FORM, "phone": "+15105550155"}
    )
    assert (
        response.status_code in {403} if role != Role.COORDINATOR else response.status_code == 302
    )


@pytest.mark.django_db
def test_trainings_and_shifts() -> None:
    client = staff(Role.COORDINATOR)
    person = responder()
    client.post(
        f"/dispatch/responders/{person.uuid}/trainings/",
        {"name": "Legal observer training", "completed_on": "2026-10-01"},
    )
    client.post(
        f"/dispatch/responders/{person.uuid}/shifts/",
        {"starts_at": "2026-12-01T08:00", "ends_at": "2026-12-01T16:00"},
    )
    bad = client.post(
        f"/dispatch/responders/{person.uuid}/shifts/",
        {"starts_at": "2026-12-01T16:00", "ends_at": "2026-12-01T08:00"},
        follow=True,
    )
    assert b"must end after it starts" in bad.content
    assert person.trainings.count() == 1 and person.shifts.count() == 1


GOOD_CSV = """name,phone,roles,languages,neighbourhood,notes
Ana Reyes,(510) 555-0171,verifier; legal_observer,es;en,Fruitvale,has a car
Ben Ortiz,+1 510 555 0172,verifier,en,,
"""

BAD_CSV = """name,phone,roles,languages,neighbourhood
Ana Reyes,(510) 555-0171,verifier,es,Fruitvale
,not a phone,pilot,xx,Atlantis
Carla Diaz,510-555-0171,verifier,es,
"""


def upload(client: Client, text: str) -> Any:
    with committed():
        return client.post(
            "/dispatch/responders/import/",
            {"file": SimpleUploadedFile("people.csv", text.encode(), content_type="text/csv")},
        )


@pytest.mark.django_db
def test_a_good_csv_imports_every_row(service_area: Any) -> None:
    client = staff(Role.COORDINATOR)
    response = upload(client, GOOD_CSV)
    assert response.status_code == 302
    job = ResponderImport.objects.get()
    assert job.status == ImportStatus.DONE and job.imported == 2 and job.percent == 100
    assert job.content == ""  # the uploaded names and numbers are not kept
    assert Responder.objects.count() == 2
    ana = next(r for r in Responder.objects.all() if r.name == "Ana Reyes")
    assert ana.home_neighbourhood is not None and ana.home_neighbourhood.name == "Fruitvale"
    page = client.get(response["Location"])
    assert b"2 responders imported" in page.content
    progress = client.get(response["Location"], HTTP_HX_REQUEST="true")
    assert b"<progress" in progress.content and b"<html" not in progress.content


@pytest.mark.django_db
def test_a_bad_csv_imports_nothing_and_names_every_bad_row(service_area: Any) -> None:
    client = staff(Role.COORDINATOR)
    response = upload(client, BAD_CSV)
    job = ResponderImport.objects.get()
    assert job.status == ImportStatus.REJECTED
    lines = {problem["line"] for problem in job.errors}
    assert lines == {3, 4}
    reasons = " ".join(problem["reason"] for problem in job.errors)
    assert "phone number is not valid" in reasons and "roles must be" in reasons
    assert "unknown neighbourhood" in reasons and "same phone number is on line 2" in reasons
    assert not Responder.objects.exists()
    page = client.get(response["Location"])
    assert b"Nothing was imported" in page.content


@pytest.mark.django_db
def test_a_csv_without_the_required_columns_is_rejected() -> None:
    client = staff(Role.COORDINATOR)
    upload(client, "who,number\nAna,5105550171\n")
    job = ResponderImport.objects.get()
    assert job.status == ImportStatus.REJECTED
    assert "Missing columns" in job.errors[0]["reason"]


@pytest.mark.django_db
def test_a_file_that_is_not_utf8_is_refused() -> None:
    client = staff(Role.COORDINATOR)
    response = client.post(
        "/dispatch/responders/import/",
        {"file": SimpleUploadedFile("people.csv", "Peña".encode("utf-16"))},
    )
    assert response.status_code == 422
    assert not ResponderImport.objects.exists()


@pytest.mark.django_db
def test_only_coordinators_import(dispatcher: User) -> None:
    client = Client()
    client.force_login(dispatcher)
    assert client.get("/dispatch/responders/import/").status_code == 403

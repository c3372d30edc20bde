"""The responder's signed pages and the evidence they upload."""

from __future__ import annotations

import hashlib
import io
import struct
import time
from typing import Any

import pytest
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from accounts.models import User
from conftest import FRUITVALE
from dispatch import actions, evidence, links
from dispatch.models import Evidence, EvidenceKind, Finding, Offer, OfferStatus
from dispatch.tests.factories import responder
from dispatch.tests.test_offers import incident


def accepted_offer(dispatcher: User) -> Offer:
    event = incident()
    person = responder(at=FRUITVALE)
    [offer] = actions.send_offers(actor=dispatcher, incident=event, responders=[person])
    actions.answer_offer(offer=offer, accept=True)
    offer.refresh_from_db()
    return offer


def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (40, 30), "red")
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (37.0, 46.0, 36.0), 3: "W", 4: (122.0, 13.0, 35.0)}
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def mp4_with_location() -> bytes:
    """A minimal MP4 whose metadata says where and on what it was filmed."""
    xyz = box(b"\xa9xyz", b"\x00\x11\x15\xc7+37.7766-122.2265/")
    udta = box(b"udta", xyz + box(b"\xa9mak", b"\x00\x05\x00\x00PhoneMaker"))
    trak = box(b"trak", box(b"tkhd", bytes(84)) + box(b"udta", box(b"\xa9xyz", b"+37.77-122.22/")))
    moov = box(b"moov", box(b"mvhd", bytes(100)) + trak + udta)
    return (
        box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41")
        + moov
        + box(b"mdat", b"\x01\x02\x03" * 50)
    )


@pytest.mark.django_db
def test_the_signed_link_opens_the_field_page(client: Client, dispatcher: User) -> None:
    offer = accepted_offer(dispatcher)
    response = client.get(links.offer_path(offer))
    assert response.status_code == 200
    assert b"I have arrived" in response.content
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_a_tampered_link_is_refused(client: Client, dispatcher: User) -> None:
    offer = accepted_offer(dispatcher)
    path = links.offer_path(offer)
    tampered = path[:-3] + ("A" if path[-3] != "A" else "B") + path[-2:]
    assert client.get(tampered).status_code == 404
    assert client.get("/r/not-a-token/").status_code == 404
    # A responder link cannot open an offer page (different purpose).
    assert (
        client.get("/r/" + links.responder_path(offer.responder).split("/")[3] + "/").status_code
        == 404
    )


@pytest.mark.django_db
def test_an_expired_link_is_refused(client: Client, dispatcher: User, settings: Any) -> None:
    offer = accepted_offer(dispatcher)
    path = links.offer_path(offer)
    settings.RR_FIELD_LINK_HOURS = 0
    time.sleep(1.1)
    response = client.get(path)
    assert response.status_code == 410
    assert b"expired" in response.content


@pytest.mark.django_db
def test_accepting_and_arriving_from_the_page(client: Client, dispatcher: User) -> None:
    event = incident()
    person = responder(at=FRUITVALE)
    [offer] = actions.send_offers(actor=dispatcher, incident=event, responders=[person])
    path = links.offer_path(offer)
    client.post(path, {"step": "accept"})
    client.post(path, {"step": "arrived"})
    offer.refresh_from_db()
    assert offer.status == OfferStatus.ACCEPTED and offer.arrived_at is not None
    event.refresh_from_db()
    assert event.first_accepted_at is not None and event.first_arrived_at is not None


@pytest.mark.django_db
def test_a_field_report_with_a_photo_keeps_the_chain_of_custody(
    client: Client, dispatcher: User
) -> None:
    offer = accepted_offer(dispatcher)
    raw = jpeg_with_gps()
    response = client.post(
        links.offer_path(offer),
        {
            "step": "report",
            "finding": Finding.VERIFIED,
            "officers": "6",
            "vehicles": "2",
            "detentions": "1",
            "agencies": "ICE ERO",
            "notes": "One man taken into the grey SUV.",
        },
    )
    assert response.status_code == 302
    response = client.post(
        links.offer_path(offer),
        {
            "step": "upload",
            "uploads": [SimpleUploadedFile("scene.jpg", raw, content_type="image/jpeg")],
        },
    )
    assert response.status_code == 302
    item = Evidence.objects.get()
    assert item.kind == EvidenceKind.PHOTO
    assert item.uploaded_by == offer.responder
    original = evidence.read(item, "original")
    assert original == raw
    assert hashlib.sha256(original).hexdigest() == item.original_sha256
    shared = evidence.read(item, "shared")
    assert hashlib.sha256(shared).hexdigest() == item.shared_sha256
    assert b"PhoneMaker" not in shared and not Image.open(io.BytesIO(shared)).getexif()
    with item.original.open("rb") as handle:
        assert b"PhoneMaker" not in handle.read()  # encrypted at rest
    report = Offer.objects.get(pk=offer.pk).field_report
    assert (report.finding, report.officers, report.detentions) == ("verified", 6, 1)
    assert report.notes == "One man taken into the grey SUV."


@pytest.mark.django_db
def test_videos_lose_their_location_metadata_in_place(client: Client, dispatcher: User) -> None:
    offer = accepted_offer(dispatcher)
    raw = mp4_with_location()
    client.post(
        links.offer_path(offer),
        {"step": "upload", "uploads": [SimpleUploadedFile("v.mp4", raw, content_type="video/mp4")]},
    )
    item = Evidence.objects.get()
    assert item.kind == EvidenceKind.VIDEO
    shared = evidence.read(item, "shared")
    assert len(shared) == len(raw)  # nothing moved: sample offsets stay valid
    assert b"37.77" not in shared and b"PhoneMaker" not in shared and b"\xa9xyz" not in shared
    assert shared.index(b"mdat") == raw.index(b"mdat")
    assert evidence.read(item, "original") == raw


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.txt", b"plain text"),
        ("fake.mp4", b"\x00\x00\x00\x20ftypisom" + b"\xff" * 8),
        ("x.gif", b"GIF89a"),
    ],
)
def test_files_that_are_not_photos_or_videos_are_refused(
    client: Client, dispatcher: User, name: str, content: bytes
) -> None:
    offer = accepted_offer(dispatcher)
    response = client.post(
        links.offer_path(offer), {"step": "upload", "uploads": [SimpleUploadedFile(name, content)]}
    )
    assert response.status_code == 422
    assert not Evidence.objects.exists()


@pytest.mark.django_db
def test_only_an_accepted_offer_can_report(client: Client, dispatcher: User) -> None:
    event = incident()
    person = responder(at=FRUITVALE)
    [offer] = actions.send_offers(actor=dispatcher, incident=event, responders=[person])
    response = client.post(links.offer_path(offer), {"step": "report", "finding": "verified"})
    assert response.status_code == 422
    assert not hasattr(Offer.objects.get(pk=offer.pk), "field_report")


@pytest.mark.django_db
def test_the_responder_page_turns_availability_and_shares_location(client: Client) -> None:
    person = responder(available=False)
    path = links.responder_path(person)
    client.post(path, {"step": "on"})
    person.refresh_from_db()
    assert person.available
    client.post(path, {"step": "location", "lat": "37.77661", "lng": "-122.22654"})
    person.refresh_from_db()
    assert (person.shared_lat, person.shared_lng) == (37.777, -122.227)  # about 100 m
    bad = client.post(path, {"step": "location", "lat": "north", "lng": "x"})
    assert bad.status_code == 422
    client.post(path, {"step": "off"})
    person.refresh_from_db()
    assert not person.available and person.shared_lat is None


@pytest.mark.django_db
def test_evidence_files_are_for_staff_and_originals_for_coordinators(
    client: Client, dispatcher_client: Client, coordinator: User, dispatcher: User
) -> None:
    offer = accepted_offer(dispatcher)
    client.post(
        links.offer_path(offer),
        {"step": "upload", "uploads": [SimpleUploadedFile("s.jpg", jpeg_with_gps())]},
    )
    item = Evidence.objects.get()
    shared_url = f"/dispatch/evidence/{item.uuid}/shared/"
    original_url = f"/dispatch/evidence/{item.uuid}/original/"
    assert Client().get(shared_url).status_code == 302
    assert dispatcher_client.get(shared_url).status_code == 200
    assert dispatcher_client.get(original_url).status_code == 403
    boss = Client()
    boss.force_login(coordinator)
    response = boss.get(original_url)
    assert response.status_code == 200 and response.content == jpeg_with_gps()[:0] + evidence.read(
        item, "original"
    )


def test_signing_salts_keep_links_apart() -> None:
    token = signing.TimestampSigner(salt=links.RESPONDER_SALT).sign("0" * 32)
    with pytest.raises(links.LinkInvalid):
        links.offer_from(token)


@pytest.mark.django_db
def test_only_a_valid_field_link_may_receive_large_uploads(dispatcher: User, settings: Any) -> None:
    from core.middleware import body_limit_for

    offer = accepted_offer(dispatcher)
    assert body_limit_for(links.offer_path(offer)) > settings.RR_MAX_UPLOAD_BYTES
    assert body_limit_for("/r/forged-token/") == settings.RR_MAX_BODY_BYTES
    assert body_limit_for(links.responder_path(offer.responder)) == settings.RR_MAX_BODY_BYTES


@pytest.mark.django_db
def test_nested_boxes_and_heic_photos_are_refused_cleanly(client: Client, dispatcher: User) -> None:
    offer = accepted_offer(dispatcher)
    deep = box(b"moov", b"")
    for _ in range(50):
        deep = box(b"trak", deep)
    nested = box(b"ftyp", b"isom\x00\x00\x02\x00") + box(b"moov", deep)
    heic = box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic") + box(b"meta", bytes(20))
    for name, content in (("deep.mp4", nested), ("photo.heic", heic)):
        response = client.post(
            links.offer_path(offer),
            {"step": "upload", "uploads": [SimpleUploadedFile(name, content)]},
        )
        assert response.status_code == 422
    assert not Evidence.objects.exists()


@pytest.mark.django_db
def test_withdrawing_from_the_page_and_closed_offers_hide_the_place(
    client: Client, dispatcher: User
) -> None:
    offer = accepted_offer(dispatcher)
    path = links.offer_path(offer)
    assert b"geo:" in client.get(path).content
    client.post(path, {"step": "withdraw"})
    offer.refresh_from_db()
    assert offer.status == OfferStatus.WITHDRAWN
    page = client.get(path)
    assert b"geo:" not in page.content and b"International" not in page.content
    assert b"This offer is closed" in page.content


@pytest.mark.django_db
def test_at_most_three_files_at_a_time(client: Client, dispatcher: User) -> None:
    offer = accepted_offer(dispatcher)
    files = [SimpleUploadedFile(f"{i}.jpg", jpeg_with_gps()) for i in range(4)]
    response = client.post(links.offer_path(offer), {"step": "upload", "uploads": files})
    assert response.status_code == 422
    assert not Evidence.objects.exists()

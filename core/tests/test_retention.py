"""Retention (R18, R20): each rule purges its data at its period, once, with a
count-only audit event; a dry run changes nothing; coordinators set the periods within
bounds. The clock is frozen at creation plus the period, as the requirement says."""

from __future__ import annotations

import contextlib
import io
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection, connections
from django.test import Client
from django.utils import timezone
from PIL import Image

from accounts.models import Role, User
from alerts import subscriptions
from alerts.models import Subscriber, SubscriberStatus
from calls.models import Call, CallOutcome, CallState
from conftest import DOWNTOWN, FRUITVALE, make_user, post_twilio, sms_params
from core import locks, periodic, phones, retention
from core.models import AuditAction, AuditEvent, RetentionPolicy, ServiceArea
from dispatch.models import Evidence, FieldReport, Offer, OfferStatus
from dispatch.tests.factories import responder
from incidents import actions as incident_actions
from incidents.models import Incident, IncidentStatus, TimelineEntry
from intake.actions import WebReport, submit_web_report
from intake.models import Report, ReportPhoto
from intake.photos import clean_image
from intake.tests.factories import web_report
from messaging import outbox
from messaging.models import Contact, InboundMessage, OptOut, OutboxKind, OutboxMessage

EASTLAKE = (37.800, -122.250)
SAN_ANTONIO = (37.790, -122.235)
CALLER = "+15105550142"
RECORDING = "https://api.twilio.com/2010-04-01/Accounts/ACtest/Recordings/RE42"

# The real clock, taken before any test freezes it.
_now = timezone.now


@contextlib.contextmanager
def frozen_at(moment: datetime) -> Iterator[None]:
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def purge_at(moment: datetime, *args: str) -> str:
    out = io.StringIO()
    with frozen_at(moment):
        call_command("purge", *args, stdout=out)
    return out.getvalue()


def days(n: float) -> timedelta:
    return timedelta(days=n)


def database_text() -> str:
    """Every row of every table, as raw SQL returns it."""
    rows: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - table names from introspection
            rows.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(rows)


def raw_column(table: str, column: str, pk: int) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name(column)} FROM {connection.ops.quote_name(table)} WHERE id = %s",  # noqa: S608, E501 - names are ours
            [pk],
        )
        return cursor.fetchone()[0]


def photo_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    buffer.seek(0)
    return buffer.getvalue()


def web_report_with_photo(**kwargs: Any) -> Report:
    return submit_web_report(
        WebReport(
            text=kwargs.pop("text", "two vans by the laundromat"),
            language="en",
            submission_key=uuid.uuid4(),
            observed_at=timezone.now(),
            location_text="somewhere",
            photo=clean_image(io.BytesIO(photo_bytes())),
            **kwargs,
        )
    )


def decide(incident: Incident, *statuses: IncidentStatus, actor: User | None = None) -> Incident:
    for status in statuses:
        incident = incident_actions.change_status(
            actor=actor, incident=incident, status=status, reason="tested"
        )
    return incident


def incident_of(report: Report) -> Incident:
    """The report's incident as it is now."""
    report.refresh_from_db()
    assert report.incident_id is not None
    return Incident.objects.get(pk=report.incident_id)


def audit_of(rule: str) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(action=AuditAction.RETENTION_PURGED, target_id=rule).order_by(
            "pk"
        )
    )


@pytest.fixture(autouse=True)
def _one_confirmation_is_enough(settings: Any) -> None:
    settings.RR_CONFIRMATIONS_REQUIRED = 0


# --- reports ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_unlinked_reports_are_deleted_at_30_days_with_their_photos(
    service_area: ServiceArea,
) -> None:
    start = _now()
    unlinked = web_report_with_photo()
    linked = web_report(at=FRUITVALE, callback="(510) 555-0199")
    photo = ReportPhoto.objects.get(report=unlinked)
    assert unlinked.incident_id is None and linked.incident_id is not None
    assert default_storage.exists(photo.file.name)

    purge_at(start + days(29))
    assert Report.objects.filter(pk=unlinked.pk).exists()

    output = purge_at(start + days(31))
    assert not Report.objects.filter(pk=unlinked.pk).exists()
    assert not ReportPhoto.objects.filter(pk=photo.pk).exists()
    assert not default_storage.exists(photo.file.name)
    # A report in an incident that is still open keeps everything.
    linked.refresh_from_db()
    assert linked.text and linked.reporter_contact == "+15105550199"
    assert "unlinked_reports (30 days): 2 removed (photos 1, reports 1)" in output
    [event] = audit_of("unlinked_reports")
    assert event.detail == {"rule": "unlinked_reports", "days": 30, "reports": 1, "photos": 1}


@pytest.mark.django_db
def test_reports_of_unverified_and_false_incidents_go_at_14_days(
    service_area: ServiceArea, dispatcher: User
) -> None:
    start = _now()
    unverified = web_report(at=FRUITVALE, text="a raid, they say")
    false = web_report(at=DOWNTOWN, text="ICE at the school")
    verified = web_report(at=EASTLAKE, text="agents detained a man")
    never_decided = web_report(at=SAN_ANTONIO, text="someone said vans")
    decide(incident_of(unverified), IncidentStatus.VERIFYING, IncidentStatus.UNVERIFIED)
    decide(incident_of(false), IncidentStatus.VERIFYING, IncidentStatus.FALSE)
    decide(incident_of(verified), IncidentStatus.VERIFYING, IncidentStatus.VERIFIED)
    decide(incident_of(never_decided), IncidentStatus.CLOSED)
    # A responder's findings and a photo from the scene of the false one.
    offer = Offer.objects.create(
        incident=incident_of(false), responder=responder(), code="1234", status=OfferStatus.DONE
    )
    field_report = FieldReport.objects.create(offer=offer, notes="the man in the red jacket")
    original = default_storage.save("evidence/original/test.bin", ContentFile(b"sealed-a"))
    shared = default_storage.save("evidence/shared/test.bin", ContentFile(b"sealed-b"))
    Evidence.objects.create(
        field_report=field_report,
        kind="photo",
        content_type="image/jpeg",
        original=original,
        original_sha256="0" * 64,
        original_size=8,
        shared=shared,
        shared_sha256="0" * 64,
        uploaded_by=offer.responder,
    )

    purged = [incident_of(r).pk for r in (unverified, false, never_decided)]
    kept = incident_of(verified)

    purge_at(start + days(13))
    assert Report.objects.count() == 4

    purge_at(start + days(15))
    assert set(Report.objects.values_list("pk", flat=True)) == {verified.pk}
    assert not FieldReport.objects.exists() and not Evidence.objects.exists()
    assert not default_storage.exists(original) and not default_storage.exists(shared)
    assert Incident.objects.filter(pk__in=purged).count() == len(set(purged)) == 3
    for incident in Incident.objects.filter(pk__in=purged):
        # The incident stays as a closed row of times and counts.
        assert incident.status == IncidentStatus.CLOSED
        assert not TimelineEntry.objects.filter(incident=incident).exclude(reason="").exists()
    assert TimelineEntry.objects.filter(incident=kept, reason="tested").exists()
    [event] = audit_of("unverified_reports")
    assert event.detail["incidents"] == 3 and event.detail["reports"] == 3
    assert event.detail["field_reports"] == 1 and event.detail["evidence"] == 1

    # Idempotent: nothing more to do, and no second event.
    purge_at(start + days(16))
    assert len(audit_of("unverified_reports")) == 1


@pytest.mark.django_db
def test_a_closed_incidents_reporter_contact_is_blanked_and_gone_from_the_database(
    service_area: ServiceArea, twilio_api: Any
) -> None:
    start = _now()
    sid = "SM" + uuid.uuid4().hex
    post_twilio(
        Client(),
        "/hooks/twilio/sms",
        sms_params(sid, "ICE agents at 37.7766, -122.2265 near the school", sender=CALLER),
    )
    web = web_report(at=FRUITVALE, callback="(510) 555-0199")
    sms = Report.objects.get(inbound_message__provider_sid=sid)
    assert sms.incident_id == web.incident_id is not None
    message = InboundMessage.objects.get(provider_sid=sid)
    call = Call.objects.create(
        provider="twilio",
        provider_sid="CA" + uuid.uuid4().hex,
        caller=CALLER,
        caller_hash=phones.phone_hash(CALLER),
        state=CallState.ENDED,
        outcome=CallOutcome.ANSWERED,
        ended_at=timezone.now(),
        report=sms,
    )
    ciphertexts = [
        raw_column("intake_report", "reporter_contact", sms.pk),
        raw_column("intake_report", "reporter_contact", web.pk),
        raw_column("messaging_inboundmessage", "sender", message.pk),
        raw_column("calls_call", "caller", call.pk),
    ]
    decide(incident_of(sms), IncidentStatus.VERIFYING, IncidentStatus.VERIFIED)

    purge_at(start + days(0.5))  # open incident: its contacts stay
    sms.refresh_from_db()
    assert sms.reporter_contact == CALLER

    decide(incident_of(sms), IncidentStatus.CLOSED)
    purge_at(start + days(0.5))  # default 0 days: at the first purge after closing
    for report in (sms, web):
        report.refresh_from_db()
        assert report.reporter_contact is None and report.reporter_hash == ""
        assert report.text  # a verified incident's reports are kept
    message.refresh_from_db()
    assert message.sender == "" and message.sender_hash == ""
    call.refresh_from_db()
    assert call.caller == "" and call.caller_hash == ""
    assert not OutboxMessage.objects.filter(in_reply_to=message).exists()
    [event] = audit_of("closed_contacts")
    assert event.detail == {
        "rule": "closed_contacts",
        "days": 0,
        "reports": 2,
        "messages": 1,
        "replies": 1,
        "calls": 1,
    }

    purge_at(start + days(31))
    # The provider's copy was deleted (after a day), then our copy of the text.
    assert ("message", sid) in twilio_api.deleted
    assert not InboundMessage.objects.filter(pk=message.pk).exists()
    # Raw SQL: neither number, nor its keyed hash (the blind index), nor the old
    # ciphertexts are anywhere in the database.
    dump = database_text()
    for number in (CALLER, "+15105550199"):
        assert number not in dump
        assert phones.phone_hash(number) not in dump
    for token in ciphertexts:
        assert token and token not in dump
    assert not Contact.objects.exists()


# --- voice -----------------------------------------------------------------------------


def voicemail(**fields: Any) -> Call:
    defaults: dict[str, Any] = {
        "provider": "twilio",
        "provider_sid": "CA" + uuid.uuid4().hex,
        "caller": CALLER,
        "caller_hash": phones.phone_hash(CALLER),
        "state": CallState.ENDED,
        "outcome": CallOutcome.VOICEMAIL,
        "ended_at": timezone.now(),
        "recording_sid": "RE42",
        "recording_reference": RECORDING,
        "recording_seconds": 12,
        "transcript": "My name is Ana, they took my brother",
        "needs_callback": True,
    }
    defaults.update(fields)
    return Call.objects.create(**defaults)


@pytest.mark.django_db
def test_voicemail_recordings_are_deleted_at_the_provider_after_7_days(twilio_api: Any) -> None:
    start = _now()
    call = voicemail()
    twilio_api.add_recording("RE42", b"ID3-audio")
    sealed = [
        raw_column("calls_call", "recording_reference", call.pk),
        raw_column("calls_call", "transcript", call.pk),
    ]

    purge_at(start + days(6))
    call.refresh_from_db()
    assert call.recording_reference == RECORDING
    # The provider's record of the call (it names the caller) went after a day.
    assert twilio_api.deleted == [("call", call.provider_sid)]

    purge_at(start + days(8))
    call.refresh_from_db()
    assert call.recording_sid is None
    assert call.recording_reference == "" and call.transcript == ""
    assert ("recording", "RE42") in twilio_api.deleted
    assert "RE42" not in twilio_api.state.recordings
    [event] = audit_of("voicemail_recordings")
    assert event.detail == {"rule": "voicemail_recordings", "days": 7, "recordings": 1}
    dump = database_text()
    assert all(token and token not in dump for token in sealed)

    purge_at(start + days(9))
    assert len(twilio_api.deleted) == 2  # nothing asked twice


@pytest.mark.django_db
def test_a_recording_the_provider_could_not_delete_is_kept_and_tried_again(
    twilio_api: Any,
) -> None:
    start = _now()
    call = voicemail(provider_deleted_at=timezone.now())
    twilio_api.fail_next(1, status=503, code=20503)
    purge_at(start + days(8))
    call.refresh_from_db()
    assert call.recording_reference == RECORDING and not audit_of("voicemail_recordings")

    purge_at(start + days(8))
    call.refresh_from_db()
    assert call.recording_reference == "" and twilio_api.deleted == [("recording", "RE42")]


@pytest.mark.django_db
def test_callers_numbers_go_30_days_after_the_call(twilio_api: Any) -> None:
    start = _now()
    call = voicemail(recording_sid=None, recording_reference="", transcript="")
    purge_at(start + days(29))
    call.refresh_from_db()
    assert call.caller == CALLER and call.needs_callback
    purge_at(start + days(31))
    call.refresh_from_db()
    assert call.caller == "" and call.caller_hash == "" and not call.needs_callback


# --- messages and the numbers we texted ----------------------------------------------------


@pytest.mark.django_db
def test_the_providers_copies_of_messages_are_deleted_after_a_day(twilio_api: Any) -> None:
    start = _now()
    sid = "SM" + uuid.uuid4().hex
    post_twilio(Client(), "/hooks/twilio/sms", sms_params(sid, "HELP"))
    sent = outbox.queue_sms(
        to="+15105550177",
        body="Verify a report. Reply YES 4821",
        language="en",
        kind=OutboxKind.OFFER,
    )
    outbox.send_due()
    sent.refresh_from_db()
    assert sent.provider_sid

    purge_at(start + days(0.5))
    assert twilio_api.deleted == []

    purge_at(start + days(1.5))
    assert sorted(twilio_api.deleted) == sorted([("message", sid), ("message", sent.provider_sid)])
    assert InboundMessage.objects.get(provider_sid=sid).provider_deleted_at is not None
    sent.refresh_from_db()
    assert sent.provider_deleted_at is not None
    [event] = audit_of("provider_copies")
    assert event.detail == {"rule": "provider_copies", "days": 1, "inbound": 1, "outbound": 1}

    purge_at(start + days(2))
    assert len(twilio_api.deleted) == 2

    # A week on, our own copies go too, and so does the number we texted.
    purge_at(start + days(8))
    assert not InboundMessage.objects.exists() and not OutboxMessage.objects.exists()
    assert not Contact.objects.exists()


@pytest.mark.django_db
def test_what_live_alerts_and_open_offers_need_is_kept(
    service_area: ServiceArea, dispatcher: User
) -> None:
    start = _now()
    report = web_report(at=FRUITVALE)
    person = responder()
    sms = outbox.queue_sms(
        to=person.phone,
        body="Verify a report. Reply YES 4821",
        language="en",
        kind=OutboxKind.OFFER,
    )
    outbox.send_due()
    Offer.objects.create(incident=incident_of(report), responder=person, code="4821", sms=sms)
    queued = outbox.queue_sms(
        to="+15105550178",
        body="later",
        language="en",
        kind=OutboxKind.NOTICE,
        valid_until=None,
    )
    OutboxMessage.objects.filter(pk=queued.pk).update(next_attempt_at=start + days(30))

    purge_at(start + days(8))
    assert OutboxMessage.objects.filter(pk=sms.pk).exists()  # the offer is still open
    assert OutboxMessage.objects.filter(pk=queued.pk).exists()  # not sent yet

    Offer.objects.filter(sms=sms).update(status=OfferStatus.CANCELLED)
    purge_at(start + days(8))
    assert not OutboxMessage.objects.filter(pk=sms.pk).exists()
    assert OutboxMessage.objects.filter(pk=queued.pk).exists()
    assert Contact.objects.filter(phone_hash=phones.phone_hash("+15105550178")).exists()


@pytest.mark.django_db
def test_subscribers_who_stopped_are_deleted_after_30_days(service_area: ServiceArea) -> None:
    start = _now()
    area = subscriptions.area_from_text("Fruitvale")
    assert area is not None
    stopped = subscriptions.subscribe(phone="+15105550161", language="en", areas=[area])
    active = subscriptions.subscribe(phone="+15105550162", language="en", areas=[area])
    Subscriber.objects.filter(pk=active.pk).update(status=SubscriberStatus.ACTIVE)
    subscriptions.stop(phone_hash=stopped.phone_hash)
    OptOut.objects.create(phone_hash=stopped.phone_hash)

    purge_at(start + days(29))
    assert Subscriber.objects.count() == 2
    purge_at(start + days(31))
    assert list(Subscriber.objects.values_list("pk", flat=True)) == [active.pk]
    assert not Contact.objects.filter(phone_hash=stopped.phone_hash).exists()
    # The number stays blocked: carriers require it.
    assert OptOut.objects.filter(phone_hash=stopped.phone_hash).exists()


# --- dry run, audit, periods ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_dry_run_counts_and_changes_nothing(service_area: ServiceArea) -> None:
    start = _now()
    web_report_with_photo()
    web_report_with_photo(text="a second one")
    unverified = web_report(at=FRUITVALE)
    decide(incident_of(unverified), IncidentStatus.VERIFYING, IncidentStatus.UNVERIFIED)
    before = database_text()

    output = purge_at(start + days(31), "--dry-run")
    assert database_text() == before
    assert not AuditEvent.objects.filter(action=AuditAction.RETENTION_PURGED).exists()
    assert "unlinked_reports (30 days): 2 due (reports 2)" in output
    assert "unverified_reports (14 days): 2 due (incidents 1, reports 1)" in output
    # One line per rule.
    for rule in retention.RULES:
        assert f"\n{rule.key} (" in "\n" + output

    purge_at(start + days(31))
    assert audit_of("unlinked_reports")[0].detail["reports"] == 2
    assert audit_of("unverified_reports")[0].detail["reports"] == 1


@pytest.mark.django_db
def test_audit_events_hold_counts_only(service_area: ServiceArea, twilio_api: Any) -> None:
    start = _now()
    web_report_with_photo(text="Maria Lopez was taken", callback_number="+15105550199")
    voicemail()
    purge_at(start + days(31))
    events = AuditEvent.objects.filter(action=AuditAction.RETENTION_PURGED)
    assert events.count() >= 3
    for event in events:
        assert event.actor is None
        assert (
            event.target_type == "core.retentionpolicy"
            and event.target_id in retention.RULES_BY_KEY
        )
        assert event.detail["rule"] == event.target_id
        counts = {key: value for key, value in event.detail.items() if key != "rule"}
        assert counts and all(isinstance(value, int) for value in counts.values())
        text = repr(event.detail)
        assert "Maria" not in text and "5550199" not in text and "RE42" not in text
    # Rules that removed nothing wrote nothing.
    assert not audit_of("stopped_subscribers")


@pytest.mark.django_db
def test_periods_stay_within_their_bounds(coordinator: User) -> None:
    assert retention.periods()["unlinked_reports"] == 30
    for rule, days_ in (
        ("unlinked_reports", 0),
        ("unlinked_reports", 91),
        ("voicemail_recordings", 31),
    ):
        with pytest.raises(retention.RetentionRefused):
            retention.set_period(actor=coordinator, rule=rule, days=days_)
    with pytest.raises(retention.RetentionRefused):
        retention.set_period(actor=coordinator, rule="everything", days=1)
    assert not RetentionPolicy.objects.exists()

    retention.set_period(actor=coordinator, rule="unlinked_reports", days=10)
    assert retention.periods()["unlinked_reports"] == 10
    [event] = AuditEvent.objects.filter(action=AuditAction.RETENTION_CHANGED)
    assert event.actor == coordinator
    assert event.detail == {"rule": "unlinked_reports", "from_days": 30, "to_days": 10}
    # A row written around the bounds (by hand) is held to them.
    RetentionPolicy.objects.filter(rule="unlinked_reports").update(days=500)
    assert retention.periods()["unlinked_reports"] == 90


@pytest.mark.django_db
def test_a_changed_period_is_the_one_used(coordinator: User) -> None:
    start = _now()
    report = web_report()
    retention.set_period(actor=coordinator, rule="unlinked_reports", days=10)
    purge_at(start + days(9))
    assert Report.objects.filter(pk=report.pk).exists()
    purge_at(start + days(11))
    assert not Report.objects.filter(pk=report.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "status"),
    [(None, 302), (Role.VERIFIER, 403), (Role.DISPATCHER, 403), (Role.COORDINATOR, 200)],
)
def test_only_coordinators_reach_the_retention_page(role: Role | None, status: int) -> None:
    client = Client()
    if role is not None:
        client.force_login(make_user(role))
    response = client.get("/retention/")
    assert response.status_code == status
    if status == 302:
        assert response["Location"].startswith("/accounts/login/")
    response = client.post("/retention/", {"rule": "unlinked_reports", "days": "5"})
    assert response.status_code == (302 if role in {None, Role.COORDINATOR} else 403)
    assert RetentionPolicy.objects.exists() == (role == Role.COORDINATOR)


@pytest.mark.django_db
def test_the_page_shows_the_rules_and_refuses_a_period_out_of_bounds(coordinator: User) -> None:
    client = Client()
    client.force_login(coordinator)
    page = client.get("/retention/")
    text = page.content.decode()
    assert page["Cache-Control"].count("no-store") == 1
    for rule in retention.RULES:
        assert f'id="days-{rule.key}"' in text
    assert 'min="1" max="90" value="30"' in text

    response = client.post("/retention/", {"rule": "unlinked_reports", "days": "400"})
    assert response.status_code == 422
    assert "Choose between 1 and 90 days." in response.content.decode()
    assert not RetentionPolicy.objects.exists()
    response = client.post("/retention/", {"rule": "unlinked_reports", "days": "lots"})
    assert response.status_code == 422
    response = client.post("/retention/", {"rule": "unlinked_reports", "days": "20"})
    assert response.status_code == 302
    assert RetentionPolicy.objects.get(rule="unlinked_reports").days == 20


# --- running it -----------------------------------------------------------------------------


def test_the_worker_runs_the_purge_every_hour() -> None:
    [job] = [job for job in periodic.jobs() if job.name == "core.retention-purge"]
    assert job.every_seconds == 3600


@pytest.mark.django_db(transaction=True)
def test_two_purges_at_once_remove_each_report_once() -> None:
    start = _now()
    reports = [web_report(text=f"report {i}") for i in range(30)]
    removed: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            outcomes = retention.purge(batch_size=4)
            removed.extend(
                o.counts.get("reports", 0) for o in outcomes if o.rule.key == "unlinked_reports"
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    # One patch around both threads: patching from each thread would race.
    with frozen_at(start + days(31)):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    assert sum(removed) == len(reports)
    assert not Report.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_second_scheduled_purge_waits_for_the_first() -> None:
    answers: list[object] = []

    def other_worker() -> None:
        try:
            answers.append(retention.purge_exclusively())
        finally:
            connections.close_all()

    with locks.exclusive(retention.LOCK_NAME, ttl_seconds=60) as ours:
        assert ours
        thread = threading.Thread(target=other_worker)
        thread.start()
        thread.join(timeout=30)
    assert answers == [None]
    assert retention.purge_exclusively() is not None

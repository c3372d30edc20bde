"""Hearing reminders: when they are due, who gets them, in which language, what they
say, that each goes out once, and that they stop when they must."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from django.utils import formats, timezone, translation

from accounts.models import Role, User
from cases import hearings, reminders
from cases.models import (
    Accompaniment,
    CaseStatus,
    Hearing,
    HearingKind,
    HearingReminder,
    ReminderLead,
    ReminderStatus,
)
from cases.tests.hearing_factories import (
    A_NUMBER,
    add_hearing,
    close_case,
    in_days,
    local,
    make_case,
    make_contact,
    volunteer,
)
from conftest import make_user
from core import phones
from core.models import AuditAction, AuditEvent
from messaging.models import OptOut, OutboxKind, OutboxMessage, OutboxStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker() -> User:
    return make_user(Role.FAMILY_SUPPORT, username="fam")


def reminder_of(hearing: Hearing, lead: ReminderLead, **recipient: object) -> HearingReminder:
    return HearingReminder.objects.get(hearing=hearing, lead=lead, **recipient)


def sent_to(phone: str) -> list[OutboxMessage]:
    return list(
        OutboxMessage.objects.filter(recipient_hash=phones.phone_hash(phone)).order_by("pk")
    )


# When


def test_due_the_evening_before_and_the_morning_of_in_local_time() -> None:
    starts = local(date(2026, 12, 9), time(10, 30))
    due = reminders.due_times(starts)
    assert due[ReminderLead.DAY_BEFORE] == local(date(2026, 12, 8), time(18, 0))
    assert due[ReminderLead.MORNING_OF] == local(date(2026, 12, 9), time(8, 0))


def test_daylight_saving_change_keeps_the_wall_clock_times() -> None:
    # Clocks in Los Angeles went forward on 8 March 2026: the evening before is PST,
    # the morning of is PDT, and both still read 18:00 and 08:00.
    starts = local(date(2026, 3, 8), time(13, 0))
    due = reminders.due_times(starts)
    assert due[ReminderLead.DAY_BEFORE].utcoffset() == timedelta(hours=-8)
    assert due[ReminderLead.MORNING_OF].utcoffset() == timedelta(hours=-7)
    assert due[ReminderLead.MORNING_OF].hour == 8


def test_an_early_appointment_has_no_morning_reminder() -> None:
    due = reminders.due_times(local(date(2026, 12, 9), time(8, 30)))
    assert set(due) == {ReminderLead.DAY_BEFORE}


# Who


def test_adding_a_hearing_schedules_consenting_family_with_a_phone(worker: User) -> None:
    case = make_case(opened_by=worker)
    yes = make_contact(case)
    make_contact(case, consent=False)
    make_contact(case, phone="", consent=True)
    hearing = add_hearing(case, actor=worker)
    rows = HearingReminder.objects.filter(hearing=hearing)
    assert {(r.contact_id, r.lead) for r in rows} == {
        (yes.pk, ReminderLead.DAY_BEFORE),
        (yes.pk, ReminderLead.MORNING_OF),
    }
    assert all(r.status == ReminderStatus.PENDING for r in rows)


def test_leads_already_past_are_not_scheduled(worker: User) -> None:
    case = make_case(opened_by=worker)
    make_contact(case)
    # Tomorrow 23:30: whatever the time now, the evening before may be past or not,
    # but the morning of is still ahead.
    starts = in_days(1, time(23, 30))
    hearing = add_hearing(case, actor=worker, starts_at=starts)
    due = reminders.due_times(starts)
    leads = set(HearingReminder.objects.filter(hearing=hearing).values_list("lead", flat=True))
    expected = {lead for lead, at in due.items() if at > timezone.now()}
    assert leads == expected
    assert ReminderLead.MORNING_OF in leads


def test_a_volunteer_who_signs_up_is_scheduled_and_dropped_on_cancel(worker: User) -> None:
    case = make_case(opened_by=worker)
    hearing = add_hearing(case, actor=worker)
    vera = volunteer()
    result = hearings.sign_up(responder=vera, hearing=hearing)
    assert result.changed
    assert HearingReminder.objects.filter(hearing=hearing, responder=vera).count() == 2
    hearings.cancel_sign_up(actor=worker, accompaniment=result.accompaniment)
    statuses = set(
        HearingReminder.objects.filter(hearing=hearing, responder=vera).values_list(
            "status", flat=True
        )
    )
    assert statuses == {ReminderStatus.SKIPPED}


# What and in which language


def test_family_gets_spanish_with_first_name_only(worker: User) -> None:
    case = make_case(opened_by=worker)
    rosa = make_contact(case, language="es")
    hearing = add_hearing(case, actor=worker, kind=HearingKind.HEARING)
    due = reminder_of(hearing, ReminderLead.DAY_BEFORE, contact=rosa).due_at
    result = reminders.send_due(now=due)
    assert result.sent == 1
    [message] = sent_to(rosa.phone)
    assert message.language == "es"
    assert message.kind == OutboxKind.REMINDER
    text = message.text
    with translation.override("es"):
        # Django's own Spanish date formats: the weekday and month are Spanish words
        # (the weekday spelt in the GSM alphabet: "sabado").
        local_start = hearing.starts_at.astimezone(reminders.network_zone())
        assert reminders.gsm_spelling(formats.date_format(local_start, "l")) in text
        assert formats.date_format(local_start, "DATE_FORMAT") in text
    assert "Maria" in text
    for secret in ("Elena", "Lopez", "Garcia", A_NUMBER, "I-220A"):
        assert secret not in text
    assert hearing.place in text


def test_volunteer_gets_their_language_and_nothing_identifying(worker: User) -> None:
    case = make_case(opened_by=worker)
    hearing = add_hearing(case, actor=worker)
    vera = volunteer(languages=["es"])
    sam = volunteer(languages=["en"])
    hearings.sign_up(responder=vera, hearing=hearing)
    hearings.sign_up(responder=sam, hearing=hearing)
    due = reminders.due_times(hearing.starts_at)[ReminderLead.DAY_BEFORE]
    assert reminders.send_due(now=due).sent == 2
    [to_vera] = sent_to(vera.phone)
    [to_sam] = sent_to(sam.phone)
    assert (to_vera.language, to_sam.language) == ("es", "en")
    for message in (to_vera, to_sam):
        for secret in ("Maria", "Lopez", A_NUMBER, "I-220A", case.reference):
            assert secret not in message.text
        assert hearing.place in message.text
        assert "/cases/volunteer/" in message.text
    assert "Spanish" in to_sam.text  # the language the family needs


# Once


def test_each_reminder_goes_out_once_however_often_the_sender_runs(worker: User) -> None:
    case = make_case(opened_by=worker)
    rosa = make_contact(case)
    hearing = add_hearing(case, actor=worker)
    morning = reminders.due_times(hearing.starts_at)[ReminderLead.MORNING_OF]
    first = reminders.send_due(now=morning)
    again = reminders.send_due(now=morning)
    # The evening reminder was superseded: both were due at once (the sender was
    # down overnight), so only the latest went.
    assert (first.sent, first.skipped) == (1, 1)
    assert (again.sent, again.skipped) == (0, 0)
    assert len(sent_to(rosa.phone)) == 1
    evening = reminder_of(hearing, ReminderLead.DAY_BEFORE, contact=rosa)
    assert (evening.status, evening.skip_reason) == (ReminderStatus.SKIPPED, "superseded")
    audit = AuditEvent.objects.filter(action=AuditAction.REMINDERS_SENT)
    assert [e.detail["count"] for e in audit] == [1]


def test_nothing_is_sent_before_it_is_due(worker: User) -> None:
    case = make_case(opened_by=worker)
    rosa = make_contact(case)
    hearing = add_hearing(case, actor=worker)
    due = reminders.due_times(hearing.starts_at)[ReminderLead.DAY_BEFORE]
    assert reminders.send_due(now=due - timedelta(seconds=1)).sent == 0
    assert sent_to(rosa.phone) == []


# Stopping


def test_closing_the_case_stops_reminders(worker: User) -> None:
    case = make_case(opened_by=worker)
    rosa = make_contact(case)
    hearing = add_hearing(case, actor=worker)
    close_case(case)
    due = reminders.due_times(hearing.starts_at)[ReminderLead.DAY_BEFORE]
    result = reminders.send_due(now=due)
    assert (result.sent, result.skipped) == (0, 1)
    assert sent_to(rosa.phone) == []
    row = reminder_of(hearing, ReminderLead.DAY_BEFORE, contact=rosa)
    assert (row.status, row.skip_reason) == (ReminderStatus.SKIPPED, "case_closed")


def test_a_released_person_still_gets_reminders(worker: User) -> None:
    case = make_case(opened_by=worker)
    rosa = make_contact(case)
    hearing = add_hearing(case, actor=worker)
    case.status = CaseStatus.RELEASED
    case.save(update_fields=["status"])
    due = reminders.due_times(hearing.starts_at)[ReminderLead.DAY_BEFORE]
    assert reminders.send_due(now=due).sent == 1
    assert len(sent_to(rosa.phone)) == 1


def test_cancelling_the_hearing_skips_its_pending_reminders(worker: User) -> None:
    case = make_case(opened_by=worker)
    rosa = make_contact(case)
    hearing = add_hearing(case, actor=worker)
    hearings.cancel_hearing(actor=worker, hearing=hearing)
    assert set(HearingReminder.objects.values_list("status", flat=True)) == {ReminderStatus.SKIPPED}
    due = reminders.due_times(hearing.starts_at)[ReminderLead.DAY_BEFORE]
    assert reminders.send_due(now=due).sent == 0
    assert sent_to(rosa.phone) == []


def test_a_moved_hearing_sends_the_new_time_again(worker: User) -> None:
    case = make_case(opened_by=worker)
    rosa = make_contact(case)
    hearing = add_hearing(case, actor=worker, starts_at=in_days(3))
    evening = reminders.due_times(hearing.starts_at)[ReminderLead.DAY_BEFORE]
    assert reminders.send_due(now=evening).sent == 1
    # Moved two days later (the evening reminder already told the old date).
    new_start = in_days(5)
    hearings.change_hearing(
        actor=worker,
        hearing=hearing,
        data=hearings.HearingData(
            kind=hearing.kind, starts_at=new_start, place=hearing.place, language_needed="es"
        ),
    )
    row = reminder_of(hearing, ReminderLead.DAY_BEFORE, contact=rosa)
    assert row.status == ReminderStatus.PENDING
    assert row.due_at == reminders.due_times(new_start)[ReminderLead.DAY_BEFORE]
    # The old time passes: nothing more goes out then.
    assert reminders.send_due(now=evening + timedelta(hours=14)).sent == 0
    assert reminders.send_due(now=row.due_at).sent == 1
    first, second = sent_to(rosa.phone)
    with translation.override("es"):
        assert formats.date_format(new_start, "DATE_FORMAT") in second.text
        assert formats.date_format(new_start, "DATE_FORMAT") not in first.text


def test_an_edit_that_keeps_the_time_does_not_resend(worker: User) -> None:
    case = make_case(opened_by=worker)
    rosa = make_contact(case)
    hearing = add_hearing(case, actor=worker)
    evening = reminders.due_times(hearing.starts_at)[ReminderLead.DAY_BEFORE]
    reminders.send_due(now=evening)
    hearings.change_hearing(
        actor=worker,
        hearing=hearing,
        data=hearings.HearingData(
            kind=hearing.kind, starts_at=hearing.starts_at, place="Room 4, " + hearing.place
        ),
    )
    assert reminder_of(hearing, ReminderLead.DAY_BEFORE, contact=rosa).status == (
        ReminderStatus.SENT
    )
    assert reminders.send_due(now=evening + timedelta(minutes=5)).sent == 0


def test_opted_out_numbers_and_withdrawn_consent_are_skipped(worker: User) -> None:
    case = make_case(opened_by=worker)
    rosa = make_contact(case)
    luis = make_contact(case, name="Luis")
    hearing = add_hearing(case, actor=worker)
    OptOut.objects.create(phone_hash=phones.phone_hash(rosa.phone))
    luis.sms_consent = False
    luis.save()
    due = reminders.due_times(hearing.starts_at)[ReminderLead.DAY_BEFORE]
    result = reminders.send_due(now=due)
    assert result.sent == 0
    reasons = {
        r.contact_id: r.skip_reason
        for r in HearingReminder.objects.filter(lead=ReminderLead.DAY_BEFORE)
    }
    assert reasons == {rosa.pk: "opted_out", luis.pk: "no_consent"}
    assert OutboxMessage.objects.count() == 0


def test_a_volunteer_made_inactive_is_skipped(worker: User) -> None:
    case = make_case(opened_by=worker)
    hearing = add_hearing(case, actor=worker)
    vera = volunteer()
    hearings.sign_up(responder=vera, hearing=hearing)
    vera.active = False
    vera.save(update_fields=["active"])
    due = reminders.due_times(hearing.starts_at)[ReminderLead.DAY_BEFORE]
    assert reminders.send_due(now=due).sent == 0
    assert not Accompaniment.objects.filter(responder=vera, status="cancelled").exists()
    assert reminder_of(hearing, ReminderLead.DAY_BEFORE, responder=vera).skip_reason == "inactive"


def test_contacts_changed_schedules_the_new_contact(worker: User) -> None:
    case = make_case(opened_by=worker)
    hearing = add_hearing(case, actor=worker)
    assert not HearingReminder.objects.filter(hearing=hearing).exists()
    rosa = make_contact(case)
    reminders.reschedule_case(case=case)
    assert HearingReminder.objects.filter(hearing=hearing, contact=rosa).count() == 2


def test_the_periodic_job_is_registered() -> None:
    from core import periodic

    names = {job.name: job for job in periodic.jobs()}
    assert names["cases.hearing-reminders"].run is reminders.periodic_send
    assert names["cases.hearing-reminders"].every_seconds <= 60


def test_a_weekday_is_spelt_in_the_gsm_alphabet_when_only_accents_keep_it_out() -> None:
    assert reminders.gsm_spelling("sábado") == "sabado"
    assert reminders.gsm_spelling("miércoles") == "miércoles"  # "é" is in the alphabet
    assert reminders.gsm_spelling("土曜日") == "土曜日"  # no spelling without it: left as is


@pytest.mark.parametrize("days", range(3, 10))
def test_reminder_texts_fit_in_a_few_segments(worker: User, days: int) -> None:
    """On every day of the week: "sábado" is written "sabado", since its "á" alone
    would make the whole text UCS-2 and twice as long in segments."""
    from core.sms import segments

    case = make_case(opened_by=worker)
    hearing = add_hearing(case, actor=worker, starts_at=in_days(days))
    vera = volunteer(languages=["es"])
    for language in ("en", "es"):
        with translation.override(language):
            family = segments(reminders.family_text(hearing, "Maria Lopez"))
            helper = segments(reminders.volunteer_text(hearing, hearings.volunteer_link(vera)))
        assert family.segments <= 2, family
        assert helper.segments <= 3, helper


def test_one_reminder_that_cannot_be_queued_does_not_hold_back_the_others(
    worker: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = make_case(opened_by=worker)
    broken = make_contact(case, phone="+15105550666")
    rosa = make_contact(case)
    hearing = add_hearing(case, actor=worker)
    from messaging import outbox

    real = outbox.queue_sms

    def refuse_one(**kwargs: object) -> OutboxMessage:
        if kwargs["to"] == broken.phone:
            raise ValueError("refused")
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reminders, "queue_sms", refuse_one)
    evening = reminders.due_times(hearing.starts_at)[ReminderLead.DAY_BEFORE]
    result = reminders.send_due(now=evening)
    assert (result.sent, result.skipped) == (1, 1)
    assert len(sent_to(rosa.phone)) == 1
    assert sent_to(broken.phone) == []
    row = reminder_of(hearing, ReminderLead.DAY_BEFORE, contact=broken)
    assert (row.status, row.skip_reason) == (ReminderStatus.SKIPPED, "error")


def test_purging_the_case_blanks_its_reminders_in_the_outbox(worker: User) -> None:
    """The case's key is destroyed so nothing names the person any more: the texts we
    sent about its hearings (a first name, a date and a place) go with it, whatever
    the outbox's own period."""
    from cases import actions

    case = make_case(opened_by=worker)
    rosa = make_contact(case, language="es")
    hearing = add_hearing(case, actor=worker, kind=HearingKind.HEARING)
    reminders.send_due(now=reminder_of(hearing, ReminderLead.DAY_BEFORE, contact=rosa).due_at)
    [message] = sent_to(rosa.phone)
    assert "Maria" in message.text
    OutboxMessage.objects.filter(pk=message.pk).update(status=OutboxStatus.SENT)
    unrelated = OutboxMessage.objects.create(
        kind=OutboxKind.REPLY,
        body="Maria, thanks",
        language="en",
        contact=message.contact,
        recipient_hash=message.recipient_hash,
    )
    close_case(case)
    assert actions.shred_case(case=case)
    message.refresh_from_db()
    assert message.text == ""
    assert message.status == OutboxStatus.SENT  # the record of sending stays
    unrelated.refresh_from_db()
    assert unrelated.text == "Maria, thanks"

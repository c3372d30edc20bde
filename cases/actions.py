"""Everything that changes a case. Keyword-only, one transaction each, and one access
event per action (``AccessEvent``, the case's append-only trail: R27). Case keys are
made before the transaction that stores the case, so a rollback leaves at worst an
unused key file, never a case without its key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Role, User
from cases import keystore, reminders
from cases.models import (
    AccessAction,
    AccessEvent,
    Case,
    CaseStatus,
    Facility,
    FamilyContact,
    Fund,
    FundKind,
    HearingReminder,
    LegalStage,
    Note,
    PartnerOrganisation,
    Referral,
    ReferralStatus,
    Task,
    Transfer,
)
from incidents.models import Incident, IncidentStatus, TimelineEntry, TimelineKind

ENDED = frozenset({CaseStatus.CLOSED, CaseStatus.REMOVED})


class CaseRefused(ValueError):
    """The change cannot be made as asked; the message says why."""


def record_access(
    *, actor: Any, case: Case, action: AccessAction, what: str = "", reason: str = ""
) -> AccessEvent:
    user = actor if getattr(actor, "is_authenticated", False) else None
    event = AccessEvent(case=case, actor=user, action=action, what=what[:40])
    if reason:
        event.reason = reason
    event.save()
    return event


def record_list_access(*, actor: Any, cases: list[Case]) -> None:
    """A page of the case list was shown to ``actor``: one "viewed" event per case whose
    person it named (purged cases show only their reference), in one insert."""
    user = actor if getattr(actor, "is_authenticated", False) else None
    AccessEvent.objects.bulk_create(
        AccessEvent(case=case, actor=user, action=AccessAction.VIEWED, what="list")
        for case in cases
        if not case.shredded
    )


def was_verified(incident: Incident) -> bool:
    """Verified now, or verified before it closed."""
    if incident.status == IncidentStatus.VERIFIED:
        return True
    return TimelineEntry.objects.filter(
        incident=incident, kind=TimelineKind.STATUS, to_value=IncidentStatus.VERIFIED
    ).exists()


def _check_assignee(actor: User, assignee: User | None) -> None:
    if assignee is None or assignee == actor:
        return
    if not actor.has_role(Role.COORDINATOR):
        raise CaseRefused(_("Only a coordinator can assign a case to someone else."))
    if not assignee.has_role(Role.FAMILY_SUPPORT, Role.COORDINATOR):
        raise CaseRefused(_("Cases can be assigned only to family support or coordinators."))


@dataclass(frozen=True)
class PersonData:
    person_name: str
    person_birth_date: date | None
    a_number: str
    detained_at: datetime
    detained_place: str


def _apply_person(case: Case, data: PersonData) -> None:
    case.person_name = data.person_name
    case.person_birth_date = data.person_birth_date.isoformat() if data.person_birth_date else ""
    case.a_number = data.a_number
    case.detained_at = data.detained_at
    case.detained_place = data.detained_place


def open_case(
    *,
    actor: User,
    incident: Incident,
    person: PersonData,
    facility: Facility | None,
    assigned_to: User | None,
) -> Case:
    if not was_verified(incident):
        raise CaseRefused(_("A case can be opened only from a verified incident."))
    if person.detained_at > timezone.now():
        raise CaseRefused(_("The detention cannot be in the future."))
    _check_assignee(actor, assigned_to)
    key_ref = keystore.new_key()
    with transaction.atomic():
        case = Case(key_ref=key_ref, opened_by=actor, assigned_to=assigned_to, facility=facility)
        _apply_person(case, person)
        case.save()
        case.incidents.add(incident)
        if facility is not None:
            Transfer.objects.create(
                case=case, facility=facility, moved_at=person.detained_at, recorded_by=actor
            )
        record_access(actor=actor, case=case, action=AccessAction.CREATED)
    return case


def _locked(case: Case) -> Case:
    locked = Case.objects.select_for_update().get(pk=case.pk)
    if locked.shredded:
        raise CaseRefused(_("This case was purged and can no longer be changed."))
    return locked


def update_person(*, actor: User, case: Case, person: PersonData) -> Case:
    if person.detained_at > timezone.now():
        raise CaseRefused(_("The detention cannot be in the future."))
    with transaction.atomic():
        case = _locked(case)
        _apply_person(case, person)
        case.updated_at = timezone.now()
        case.save()
        record_access(actor=actor, case=case, action=AccessAction.CHANGED, what="person")
    return case


def update_handling(
    *,
    actor: User,
    case: Case,
    legal_stage: LegalStage,
    status: CaseStatus,
    assigned_to: User | None,
    consulted_at: datetime | None,
) -> Case:
    """Legal stage, status (closing starts the retention clock) and assignee."""
    if consulted_at is not None and consulted_at > timezone.now():
        raise CaseRefused(_("The consultation cannot be in the future."))
    with transaction.atomic():
        case = _locked(case)
        if assigned_to != case.assigned_to:
            _check_assignee(actor, assigned_to)
        previous = case.status
        case.legal_stage = legal_stage
        case.assigned_to = assigned_to
        case.consulted_at = consulted_at
        if consulted_at is None and legal_stage != LegalStage.NO_LAWYER:
            case.consulted_at = case.consulted_at or timezone.now()
        case.status = status
        if status == CaseStatus.CLOSED and previous != CaseStatus.CLOSED:
            case.closed_at = timezone.now()
        elif status != CaseStatus.CLOSED:
            case.closed_at = None
        case.updated_at = timezone.now()
        case.save()
        if status in ENDED and previous not in ENDED:
            # Reminders stop when a case closes or the person was removed; a released
            # person still has check-ins and hearings.
            reminders.skip_for_case(case_id=case.pk)
        if status == CaseStatus.CLOSED and previous != CaseStatus.CLOSED:
            action = AccessAction.CLOSED
        elif previous == CaseStatus.CLOSED and status != CaseStatus.CLOSED:
            action = AccessAction.REOPENED
        else:
            action = AccessAction.CHANGED
        record_access(actor=actor, case=case, action=action, what="handling")
    return case


def record_transfer(*, actor: User, case: Case, facility: Facility, moved_at: datetime) -> Transfer:
    if moved_at > timezone.now():
        raise CaseRefused(_("A transfer cannot be in the future."))
    with transaction.atomic():
        case = _locked(case)
        if moved_at < case.detained_at:
            raise CaseRefused(_("A transfer cannot come before the detention."))
        transfer = Transfer.objects.create(
            case=case, facility=facility, moved_at=moved_at, recorded_by=actor
        )
        # The current place is the latest move, whatever order moves are recorded in.
        latest = Transfer.objects.filter(case=case).order_by("-moved_at", "-pk").first()
        case.facility = latest.facility if latest else facility
        case.updated_at = timezone.now()
        case.save(update_fields=["facility", "updated_at"])
        record_access(actor=actor, case=case, action=AccessAction.CHANGED, what="transfer")
    return transfer


@dataclass(frozen=True)
class ContactData:
    name: str
    relation: str
    phone: str
    language: str
    sms_consent: bool


def save_contact(
    *, actor: User, case: Case, data: ContactData, contact: FamilyContact | None = None
) -> FamilyContact:
    with transaction.atomic():
        case = _locked(case)
        if contact is None:
            contact = FamilyContact(case=case)
        elif contact.case_id != case.pk:
            raise CaseRefused(_("That contact belongs to another case."))
        contact.name = data.name
        contact.relation = data.relation
        contact.phone = data.phone
        contact.language = data.language
        contact.sms_consent = data.sms_consent and bool(data.phone)
        contact.save()
        reminders.reschedule_case(case=case)
        record_access(actor=actor, case=case, action=AccessAction.CHANGED, what="contact")
    return contact


def remove_contact(*, actor: User, case: Case, contact: FamilyContact) -> None:
    with transaction.atomic():
        case = _locked(case)
        if contact.case_id != case.pk:
            raise CaseRefused(_("That contact belongs to another case."))
        contact.delete()
        reminders.reschedule_case(case=case)
        record_access(actor=actor, case=case, action=AccessAction.CHANGED, what="contact")


def refer(*, actor: User, case: Case, organisation: PartnerOrganisation, notes: str) -> Referral:
    if not organisation.active:
        raise CaseRefused(_("This organisation is not taking referrals."))
    with transaction.atomic():
        case = _locked(case)
        organisation = PartnerOrganisation.objects.select_for_update().get(pk=organisation.pk)
        if organisation.capacity < 1:
            raise CaseRefused(_("This organisation has no open places; choose another."))
        referral = Referral(case=case, organisation=organisation, created_by=actor, notes=notes)
        referral.save()
        organisation.capacity -= 1
        organisation.save(update_fields=["capacity"])
        record_access(actor=actor, case=case, action=AccessAction.CHANGED, what="referral")
    return referral


def update_referral(
    *, actor: User, case: Case, referral: Referral, status: ReferralStatus
) -> Referral:
    with transaction.atomic():
        case = _locked(case)
        if referral.case_id != case.pk:
            raise CaseRefused(_("That referral belongs to another case."))
        referral = Referral.objects.select_for_update().get(pk=referral.pk)
        previous = referral.status
        referral.status = status
        referral.updated_at = timezone.now()
        referral.save(update_fields=["status", "updated_at"])
        if status == ReferralStatus.DECLINED and previous != ReferralStatus.DECLINED:
            # A declined referral gives its place back.
            PartnerOrganisation.objects.filter(pk=referral.organisation_id).update(
                capacity=F("capacity") + 1
            )
        if status == ReferralStatus.CONSULTED and case.consulted_at is None:
            case.consulted_at = timezone.now()
            if case.legal_stage == LegalStage.NO_LAWYER:
                case.legal_stage = LegalStage.CONSULTATION
            case.updated_at = timezone.now()
            case.save(update_fields=["consulted_at", "legal_stage", "updated_at"])
        record_access(actor=actor, case=case, action=AccessAction.CHANGED, what="referral")
    return referral


@dataclass(frozen=True)
class FundData:
    kind: FundKind
    purpose: str
    requested: Decimal
    raised: Decimal
    paid: Decimal


def save_fund(*, actor: User, case: Case, data: FundData, fund: Fund | None = None) -> Fund:
    if min(data.requested, data.raised, data.paid) < 0:
        raise CaseRefused(_("Amounts cannot be negative."))
    with transaction.atomic():
        case = _locked(case)
        if fund is None:
            fund = Fund(case=case)
        elif fund.case_id != case.pk:
            raise CaseRefused(_("That record belongs to another case."))
        fund.kind = data.kind
        fund.purpose = data.purpose
        fund.requested = data.requested
        fund.raised = data.raised
        fund.paid = data.paid
        fund.updated_by = actor
        fund.updated_at = timezone.now()
        fund.save()
        record_access(actor=actor, case=case, action=AccessAction.CHANGED, what="fund")
    return fund


def add_note(*, actor: User, case: Case, body: str) -> Note:
    if not body.strip():
        raise CaseRefused(_("Write something first."))
    with transaction.atomic():
        case = _locked(case)
        note = Note(case=case, author=actor, body=body.strip())
        note.save()
        record_access(actor=actor, case=case, action=AccessAction.CHANGED, what="note")
    return note


def add_task(
    *, actor: User, case: Case, title: str, assignee: User | None, due_on: date | None
) -> Task:
    if not title.strip():
        raise CaseRefused(_("Say what needs doing."))
    if assignee is not None and not assignee.has_role(Role.FAMILY_SUPPORT, Role.COORDINATOR):
        raise CaseRefused(_("Tasks can be assigned only to family support or coordinators."))
    with transaction.atomic():
        case = _locked(case)
        task = Task(case=case, title=title.strip(), assignee=assignee, due_on=due_on)
        task.created_by = actor
        task.save()
        record_access(actor=actor, case=case, action=AccessAction.CHANGED, what="task")
    return task


def set_task_done(*, actor: User, case: Case, task: Task, done: bool) -> Task:
    with transaction.atomic():
        case = _locked(case)
        if task.case_id != case.pk:
            raise CaseRefused(_("That task belongs to another case."))
        task.done_at = timezone.now() if done else None
        task.save(update_fields=["done_at"])
        record_access(actor=actor, case=case, action=AccessAction.CHANGED, what="task")
    return task


# --- directories (coordinators) ----------------------------------------------------------


def save_facility(*, actor: User, facility: Facility) -> Facility:
    facility.full_clean()
    facility.save()
    return facility


def save_organisation(*, actor: User, organisation: PartnerOrganisation) -> PartnerOrganisation:
    organisation.full_clean()
    organisation.save()
    return organisation


# --- crypto-shredding ---------------------------------------------------------------------


def _blank_sent_reminders(case: Case) -> None:
    """The texts sent about the case's hearings name the person (first name) with a
    date and place; they are encrypted with the field key, not the case's, so they are
    blanked here rather than left to the outbox's own period. The rows stay, as the
    record that something was sent. One in flight is left to the sender (none is, this
    long after closing: a reminder is useless once its hearing began)."""
    from messaging.models import OutboxMessage, OutboxStatus

    ids = HearingReminder.objects.filter(
        hearing__case=case, outbox_message__isnull=False
    ).values_list("outbox_message_id", flat=True)
    messages = OutboxMessage.objects.filter(pk__in=list(ids)).exclude(status=OutboxStatus.SENDING)
    for message in messages:
        if message.status in {OutboxStatus.QUEUED, OutboxStatus.HELD}:
            message.status = OutboxStatus.CANCELLED
        message.body = None
        message.save(update_fields=["body", "status"])


def shred_case(*, case: Case, closed_before: datetime | None = None) -> bool:
    """Destroy the case's key (the retention purge, once a closed case's period ran out).

    The key goes first: from then on the case's ciphertext, here and in every backup of
    the database, opens for nobody. Then the rows that only held encrypted content go
    (contacts, notes, tasks, hearings and their reminders). The case stays as dates,
    status and the facility, which say nothing about the person. Returns False when
    the case was not due (reopened meanwhile, closed again after ``closed_before``, or
    already shredded): the purge's cutoff is checked again under the row lock."""
    with transaction.atomic():
        due = Case.objects.select_for_update().filter(
            pk=case.pk, status=CaseStatus.CLOSED, key_destroyed_at__isnull=True
        )
        if closed_before is not None:
            due = due.filter(closed_at__lte=closed_before)
        locked = due.first()
        if locked is None:
            return False
        keystore.destroy_key(locked.key_ref)
        locked.key_destroyed_at = timezone.now()
        locked.save(update_fields=["key_destroyed_at"])
        _blank_sent_reminders(locked)
        for related in (locked.contacts, locked.notes, locked.tasks, locked.hearings):
            related.all().delete()
        record_access(actor=None, case=locked, action=AccessAction.SHREDDED)
    return True

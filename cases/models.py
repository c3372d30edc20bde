"""Family-support cases: a detained person, their family, legal help, money, hearings.

Everything that names or identifies the person or their family is encrypted with the
case's own key (``cases.crypto``), which lives outside the database
(``cases.keystore``): destroying it after the retention period makes the case
unreadable everywhere, database backups included. Organisation names, facility names
and places of hearings are not personal and stay plain.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cases.crypto import CaseEncryptedTextField

# The goal: a lawyer consultation within this long of the detention.
CONSULTATION_GOAL = timedelta(hours=48)


class Facility(models.Model):
    """A detention facility, from a directory coordinators maintain."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=200, unique=True)
    address = models.CharField(_("address"), max_length=300, blank=True)
    phone = models.CharField(_("public phone"), max_length=40, blank=True)
    notes = models.TextField(_("visiting and access notes"), blank=True)
    active = models.BooleanField(_("in use"), default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = _("detention facility")
        verbose_name_plural = _("detention facilities")

    def __str__(self) -> str:
        return self.name


class PartnerOrganisation(models.Model):
    """A legal partner that takes referrals: its languages and how many new cases it
    can take now."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=200, unique=True)
    # Language codes, comma-separated ("en,es").
    languages = models.CharField(_("languages"), max_length=100, default="en")
    capacity = models.PositiveSmallIntegerField(
        _("open referral places"),
        default=0,
        help_text=_("How many more cases it can take at the moment."),
    )
    contact = models.TextField(_("how to reach them"), blank=True)
    active = models.BooleanField(_("taking referrals"), default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = _("partner organisation")

    def __str__(self) -> str:
        return self.name

    @property
    def language_list(self) -> list[str]:
        return [code.strip() for code in self.languages.split(",") if code.strip()]


class CaseStatus(models.TextChoices):
    OPEN = "open", _("Open")
    RELEASED = "released", _("Released")
    REMOVED = "removed", _("Removed from the country")
    CLOSED = "closed", _("Closed")


class LegalStage(models.TextChoices):
    NO_LAWYER = "no_lawyer", _("No lawyer yet")
    CONSULTATION = "consultation", _("Consultation held")
    REPRESENTED = "represented", _("Represented")


class Case(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Names the case's key in the key store (never the key itself).
    key_ref = models.CharField(max_length=32, unique=True, editable=False)

    person_name = CaseEncryptedTextField(case_path="")
    person_birth_date = CaseEncryptedTextField(case_path="", blank=True, default="")
    a_number = CaseEncryptedTextField(case_path="", blank=True, default="")
    detained_at = models.DateTimeField()
    detained_place = CaseEncryptedTextField(case_path="", blank=True, default="")
    incidents = models.ManyToManyField("incidents.Incident", related_name="cases", blank=True)

    facility = models.ForeignKey(
        Facility, null=True, blank=True, on_delete=models.PROTECT, related_name="cases"
    )
    legal_stage = models.CharField(
        max_length=16, choices=LegalStage.choices, default=LegalStage.NO_LAWYER
    )
    # When the first lawyer consultation happened (the 48-hour goal).
    consulted_at = models.DateTimeField(null=True, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_cases",
    )
    status = models.CharField(max_length=10, choices=CaseStatus.choices, default=CaseStatus.OPEN)

    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Closing starts the retention clock; the purge destroys the key when it runs out.
    closed_at = models.DateTimeField(null=True, blank=True)
    key_destroyed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        indexes = [
            models.Index(fields=["status", "opened_at"], name="case_status_idx"),
            models.Index(fields=["assigned_to", "status"], name="case_assignee_idx"),
            # Retention: closed cases whose key still exists.
            models.Index(
                fields=["closed_at"],
                condition=models.Q(key_destroyed_at__isnull=True),
                name="case_retention_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=[choice.value for choice in CaseStatus]),
                name="case_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(legal_stage__in=[choice.value for choice in LegalStage]),
                name="case_legal_stage_valid",
            ),
            # Only a closed case has a closing time, and only a closed case is shredded.
            models.CheckConstraint(
                condition=models.Q(status="closed") | models.Q(closed_at__isnull=True),
                name="case_closed_at_only_when_closed",
            ),
            models.CheckConstraint(
                condition=models.Q(key_destroyed_at__isnull=True)
                | models.Q(closed_at__isnull=False),
                name="case_shredded_only_when_closed",
            ),
        ]

    def __str__(self) -> str:
        return f"case {self.uuid}"

    @property
    def reference(self) -> str:
        """A short label to name the case by without its person's name."""
        return self.uuid.hex[:8].upper()

    @property
    def shredded(self) -> bool:
        return self.key_destroyed_at is not None

    @property
    def consultation_due(self) -> object:
        return self.detained_at + CONSULTATION_GOAL

    def consultation_overdue(self, now: object = None) -> bool:
        moment = now or timezone.now()
        return (
            self.status == CaseStatus.OPEN
            and self.consulted_at is None
            and self.legal_stage == LegalStage.NO_LAWYER
            and self.detained_at + CONSULTATION_GOAL < moment  # type: ignore[operator]
        )


class Transfer(models.Model):
    """The person was moved to (or first found at) a facility."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="transfers")
    facility = models.ForeignKey(Facility, on_delete=models.PROTECT, related_name="+")
    moved_at = models.DateTimeField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-moved_at", "-pk"]

    def __str__(self) -> str:
        return f"transfer of {self.case_id} to {self.facility_id}"


class FamilyContact(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="contacts")
    name = CaseEncryptedTextField()
    relation = CaseEncryptedTextField(blank=True, default="")
    phone = CaseEncryptedTextField(blank=True, default="")
    language = models.CharField(max_length=8, default="en")
    sms_consent = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"contact {self.uuid}"


class ReferralStatus(models.TextChoices):
    REQUESTED = "requested", _("Requested")
    ACCEPTED = "accepted", _("Accepted")
    DECLINED = "declined", _("Declined")
    CONSULTED = "consulted", _("Consultation held")


class Referral(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="referrals")
    organisation = models.ForeignKey(
        PartnerOrganisation, on_delete=models.PROTECT, related_name="referrals"
    )
    status = models.CharField(
        max_length=10, choices=ReferralStatus.choices, default=ReferralStatus.REQUESTED
    )
    notes = CaseEncryptedTextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=[choice.value for choice in ReferralStatus]),
                name="referral_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"referral {self.uuid}"


class FundKind(models.TextChoices):
    BOND = "bond", _("Bond")
    MUTUAL_AID = "mutual_aid", _("Mutual aid")


class Fund(models.Model):
    """Money for a case: amounts only. Card or bank details are never stored."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="funds")
    kind = models.CharField(max_length=12, choices=FundKind.choices)
    purpose = CaseEncryptedTextField(blank=True, default="")
    requested = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal(0), validators=[MinValueValidator(0)]
    )
    raised = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal(0), validators=[MinValueValidator(0)]
    )
    paid = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal(0), validators=[MinValueValidator(0)]
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["kind", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(requested__gte=0, raised__gte=0, paid__gte=0),
                name="fund_amounts_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=[choice.value for choice in FundKind]),
                name="fund_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.uuid}"


class Note(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="notes")
    body = CaseEncryptedTextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"note {self.uuid}"


class Task(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="tasks")
    title = CaseEncryptedTextField()
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="case_tasks",
    )
    due_on = models.DateField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["done_at", "due_on", "pk"]
        indexes = [models.Index(fields=["assignee", "done_at"], name="case_task_assignee_idx")]

    def __str__(self) -> str:
        return f"task {self.uuid}"


class AccessAction(models.TextChoices):
    VIEWED = "viewed", _("viewed")
    CREATED = "created", _("opened")
    CHANGED = "changed", _("changed")
    EXPORTED = "exported", _("exported")
    CLOSED = "closed", _("closed")
    REOPENED = "reopened", _("reopened")
    SHREDDED = "shredded", _("key destroyed")


ACCESS_PARTS = {
    "person": _("the person's details"),
    "handling": _("status, legal help or assignee"),
    "transfer": _("a transfer"),
    "contact": _("a family contact"),
    "referral": _("a referral"),
    "fund": _("bond or mutual aid"),
    "note": _("a note"),
    "task": _("a task"),
    "export": _("an export"),
    "hearing": _("a hearing"),
    "accompaniment": _("an accompaniment"),
}


class AccessEvent(models.Model):
    """Who looked at or changed which case, and when (R27). Append-only: the model
    refuses updates and deletes, and a database trigger refuses UPDATE (and, on
    PostgreSQL, DELETE) from any client. ``what`` names the part (e.g. "contact",
    "export:csv"), never its content; an export's reason is encrypted with the case's
    key, so it is shredded with the case."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="access_events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=10, choices=AccessAction.choices)
    what = models.CharField(max_length=40, blank=True)
    # Null when there is none: an empty value would still need the case's key.
    reason = CaseEncryptedTextField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [
            models.Index(fields=["case", "at"], name="case_access_case_idx"),
            models.Index(fields=["actor", "at"], name="case_access_actor_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.case_id}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise ValueError("Access events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise ValueError("Access events are append-only.")

    @property
    def what_label(self) -> str:
        """The part, in the reader's language; an unknown part shows as stored."""
        part = self.what.split(":", 1)[0]
        return str(ACCESS_PARTS.get(part, self.what))


# --- hearings (cases-hearings builds reminders, calendar and sign-up on these) -------


class HearingKind(models.TextChoices):
    HEARING = "hearing", _("Immigration hearing")
    ICE_CHECKIN = "ice_checkin", _("ICE check-in")
    COURT_DATE = "court_date", _("Court date")


class Hearing(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="hearings")
    kind = models.CharField(max_length=12, choices=HearingKind.choices)
    starts_at = models.DateTimeField()
    # The court or ICE office (name, address): public places, not personal data.
    place = models.CharField(max_length=300)
    notes = CaseEncryptedTextField(blank=True, default="")
    # The four digits volunteers text back to sign up (cases-hearings makes them).
    code = models.CharField(max_length=4, blank=True, db_index=True)
    # The language a volunteer going along should speak ("" when any will do).
    language_needed = models.CharField(max_length=8, blank=True)
    accompaniment_wanted = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at", "pk"]
        indexes = [models.Index(fields=["starts_at"], name="hearing_starts_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=[choice.value for choice in HearingKind]),
                name="hearing_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.uuid}"


class AccompanimentStatus(models.TextChoices):
    SIGNED_UP = "signed_up", _("Signed up")
    CANCELLED = "cancelled", _("Cancelled")


class Accompaniment(models.Model):
    """A volunteer (responder) who signed up to go with the family to a hearing."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    hearing = models.ForeignKey(Hearing, on_delete=models.CASCADE, related_name="accompaniments")
    responder = models.ForeignKey(
        "dispatch.Responder", on_delete=models.CASCADE, related_name="accompaniments"
    )
    status = models.CharField(
        max_length=10, choices=AccompanimentStatus.choices, default=AccompanimentStatus.SIGNED_UP
    )
    created_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            # One row per volunteer and hearing: cancelling and signing up again flips
            # its status.
            models.UniqueConstraint(
                fields=["hearing", "responder"], name="accompaniment_one_per_responder"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=[choice.value for choice in AccompanimentStatus]),
                name="accompaniment_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"accompaniment {self.uuid}"


class ReminderLead(models.TextChoices):
    DAY_BEFORE = "day_before", _("The day before")
    MORNING_OF = "morning_of", _("The morning of")


class ReminderStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENT = "sent", _("Sent")
    SKIPPED = "skipped", _("Skipped")


class HearingReminder(models.Model):
    """One SMS reminder of one hearing to one family contact or one volunteer."""

    hearing = models.ForeignKey(Hearing, on_delete=models.CASCADE, related_name="reminders")
    contact = models.ForeignKey(
        FamilyContact, null=True, blank=True, on_delete=models.CASCADE, related_name="reminders"
    )
    responder = models.ForeignKey(
        "dispatch.Responder",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="hearing_reminders",
    )
    lead = models.CharField(max_length=12, choices=ReminderLead.choices)
    due_at = models.DateTimeField()
    outbox_message = models.ForeignKey(
        "messaging.OutboxMessage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=8, choices=ReminderStatus.choices, default=ReminderStatus.PENDING
    )
    skip_reason = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["due_at", "pk"]
        indexes = [models.Index(fields=["status", "due_at"], name="reminder_due_idx")]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(contact__isnull=False) & models.Q(responder__isnull=True))
                | (models.Q(contact__isnull=True) & models.Q(responder__isnull=False)),
                name="reminder_one_recipient",
            ),
            models.UniqueConstraint(
                fields=["hearing", "contact", "lead"], name="reminder_unique_contact"
            ),
            models.UniqueConstraint(
                fields=["hearing", "responder", "lead"], name="reminder_unique_responder"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=[choice.value for choice in ReminderStatus]),
                name="reminder_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(lead__in=[choice.value for choice in ReminderLead]),
                name="reminder_lead_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"reminder {self.pk} ({self.lead})"

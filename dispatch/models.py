"""Responders, their availability, offers to go and verify, and what they found."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.fields import EncryptedTextField
from core.geo import Point


class ResponderRole(models.TextChoices):
    VERIFIER = "verifier", _("Verifier")
    LEGAL_OBSERVER = "legal_observer", _("Legal observer")
    ATTORNEY = "attorney", _("Attorney on call")
    ACCOMPANIMENT = "accompaniment", _("Accompaniment")


# Roles and languages are stored as bit sets so matching filters them in SQL.
ROLE_BITS: dict[str, int] = {role.value: 1 << i for i, role in enumerate(ResponderRole)}
LANGUAGE_BITS: dict[str, int] = {
    code: 1 << i for i, code in enumerate(["en", "es", "pt", "ko", "zh", "vi", "fr", "ht"])
}


def role_mask(roles: list[str]) -> int:
    return sum(ROLE_BITS[r] for r in set(roles))


def language_mask(languages: list[str]) -> int:
    return sum(LANGUAGE_BITS[code] for code in set(languages) if code in LANGUAGE_BITS)


class Responder(models.Model):
    """A trained volunteer who can be sent to verify. Reached by SMS and a signed
    mobile page; no account or password needed."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = EncryptedTextField()
    phone = EncryptedTextField()
    phone_hash = models.CharField(max_length=64, unique=True)
    roles = models.PositiveIntegerField(default=ROLE_BITS[ResponderRole.VERIFIER])
    languages = models.PositiveIntegerField(default=LANGUAGE_BITS["en"])
    home_neighbourhood = models.ForeignKey(
        "core.Neighbourhood", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    notes = EncryptedTextField(blank=True, default="")
    active = models.BooleanField(default=True)

    # Available by their own say-so (SMS ON/OFF, the mobile page) or during a shift;
    # OFF during a shift holds until the shift ends (off_until).
    available = models.BooleanField(default=False)
    available_changed_at = models.DateTimeField(null=True, blank=True)
    off_until = models.DateTimeField(null=True, blank=True)
    # An approximate location shared from the mobile page, kept only while available.
    shared_lat = models.FloatField(null=True, blank=True)
    shared_lng = models.FloatField(null=True, blank=True)
    shared_at = models.DateTimeField(null=True, blank=True)
    # Where matching looks for them: the shared location, else the home neighbourhood.
    # Two cell sizes: fine cells for the nearest ring (a few km), coarse cells for wider
    # searches, so no search needs more than a few hundred cells.
    lat = models.FloatField(null=True, blank=True)
    lng = models.FloatField(null=True, blank=True)
    h3_cell = models.BigIntegerField(null=True, blank=True)
    h3_coarse = models.BigIntegerField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["h3_cell", "active"], name="responder_cell_idx"),
            models.Index(fields=["h3_coarse", "active"], name="responder_coarse_idx"),
        ]

    def __str__(self) -> str:
        return f"responder {self.uuid}"

    @property
    def point(self) -> Point | None:
        if self.lat is None or self.lng is None:
            return None
        return Point(self.lat, self.lng)

    @property
    def role_list(self) -> list[ResponderRole]:
        return [role for role in ResponderRole if self.roles & ROLE_BITS[role]]

    @property
    def language_list(self) -> list[str]:
        return [code for code, bit in LANGUAGE_BITS.items() if self.languages & bit]

    def has_role(self, role: str) -> bool:
        return bool(self.roles & ROLE_BITS[role])

    def speaks(self, language: str) -> bool:
        return bool(self.languages & LANGUAGE_BITS.get(language, 0))


class Training(models.Model):
    responder = models.ForeignKey(Responder, on_delete=models.CASCADE, related_name="trainings")
    name = models.CharField(max_length=120)
    completed_on = models.DateField()
    expires_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["-completed_on"]

    def __str__(self) -> str:
        return self.name


class Shift(models.Model):
    responder = models.ForeignKey(Responder, on_delete=models.CASCADE, related_name="shifts")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()

    class Meta:
        ordering = ["starts_at"]
        indexes = [models.Index(fields=["starts_at", "ends_at"], name="shift_time_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(starts_at__lt=models.F("ends_at")), name="shift_ordered"
            )
        ]

    def __str__(self) -> str:
        return f"shift {self.starts_at:%Y-%m-%d %H:%M}"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", _("Waiting")
    CHECKING = "checking", _("Checking rows")
    IMPORTING = "importing", _("Importing")
    DONE = "done", _("Imported")
    REJECTED = "rejected", _("Rejected: fix the rows listed")
    FAILED = "failed", _("Failed")


class ResponderImport(models.Model):
    """A CSV upload of responders. Every row is checked before any is written: one bad
    row rejects the file, with every problem listed by line."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # The uploaded file holds names and numbers: encrypted, and emptied once processed.
    content = EncryptedTextField(blank=True, default="")
    status = models.CharField(
        max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return f"import {self.uuid} ({self.status})"

    @property
    def percent(self) -> int:
        if self.status in {ImportStatus.DONE, ImportStatus.REJECTED}:
            return 100
        if not self.total_rows:
            return 0
        return min(100, round(100 * self.processed_rows / self.total_rows))

    @property
    def finished(self) -> bool:
        return self.status in {ImportStatus.DONE, ImportStatus.REJECTED, ImportStatus.FAILED}


class OfferStatus(models.TextChoices):
    OFFERED = "offered", _("Offered")
    ACCEPTED = "accepted", _("Accepted")
    DECLINED = "declined", _("Declined")
    WITHDRAWN = "withdrawn", _("Accepted, then withdrew")
    COVERED = "covered", _("Not needed any more")
    CANCELLED = "cancelled", _("Cancelled: the incident closed")
    DONE = "done", _("Done: the incident closed")


OPEN_OFFER_STATUSES = (OfferStatus.OFFERED, OfferStatus.ACCEPTED)


class Offer(models.Model):
    """A request to one responder to go and verify one incident. The four-digit code
    in the SMS ties the reply to the offer."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    incident = models.ForeignKey(
        "incidents.Incident", on_delete=models.CASCADE, related_name="offers"
    )
    responder = models.ForeignKey(Responder, on_delete=models.PROTECT, related_name="offers")
    code = models.CharField(max_length=4)
    status = models.CharField(
        max_length=10, choices=OfferStatus.choices, default=OfferStatus.OFFERED
    )
    distance_m = models.PositiveIntegerField(null=True, blank=True)
    # The offer SMS: withdrawn if it has not gone out when the offer stops being needed.
    sms = models.ForeignKey(
        "messaging.OutboxMessage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    offered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    offered_at = models.DateTimeField(default=timezone.now)
    answered_at = models.DateTimeField(null=True, blank=True)
    arrived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["offered_at"]
        constraints = [
            # A code identifies one open offer of a responder.
            models.UniqueConstraint(
                fields=["responder", "code"],
                condition=models.Q(status__in=["offered", "accepted"]),
                name="offer_open_code_unique",
            ),
            # One offer per responder per incident.
            models.UniqueConstraint(
                fields=["incident", "responder"], name="offer_once_per_incident"
            ),
        ]
        indexes = [models.Index(fields=["incident", "status"], name="offer_incident_idx")]

    def __str__(self) -> str:
        return f"offer {self.code} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_OFFER_STATUSES


class Finding(models.TextChoices):
    VERIFIED = "verified", _("Verified: I saw immigration enforcement")
    NOT_VERIFIED = "not_verified", _("Not verified: I could not confirm it")
    FALSE = "false", _("False: it is something else")


class FieldReport(models.Model):
    """What a responder saw, filed from the signed mobile page or by SMS."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    offer = models.OneToOneField(Offer, on_delete=models.CASCADE, related_name="field_report")
    finding = models.CharField(max_length=12, choices=Finding.choices, blank=True)
    # Free text from the scene can describe the people detained: encrypted.
    salute_size = EncryptedTextField(blank=True, default="")
    salute_activity = EncryptedTextField(blank=True, default="")
    salute_location = EncryptedTextField(blank=True, default="")
    salute_uniform = EncryptedTextField(blank=True, default="")
    salute_time = EncryptedTextField(blank=True, default="")
    salute_equipment = EncryptedTextField(blank=True, default="")
    agencies = models.CharField(max_length=300, blank=True)
    officers = models.PositiveSmallIntegerField(null=True, blank=True)
    vehicles = models.PositiveSmallIntegerField(null=True, blank=True)
    detentions = models.PositiveSmallIntegerField(null=True, blank=True)
    notes = EncryptedTextField(blank=True, default="")
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"field report {self.uuid}"


class EvidenceKind(models.TextChoices):
    PHOTO = "photo", _("Photo")
    VIDEO = "video", _("Video")


class Evidence(models.Model):
    """An upload with its chain of custody. The original is kept encrypted for legal use;
    the copy others see has its location and device metadata removed."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    field_report = models.ForeignKey(FieldReport, on_delete=models.CASCADE, related_name="evidence")
    kind = models.CharField(max_length=8, choices=EvidenceKind.choices)
    content_type = models.CharField(max_length=60)
    original = models.FileField(upload_to="evidence/original/%Y/%m/")
    original_sha256 = models.CharField(max_length=64)
    original_size = models.PositiveBigIntegerField()
    shared = models.FileField(upload_to="evidence/shared/%Y/%m/")
    shared_sha256 = models.CharField(max_length=64)
    uploaded_at = models.DateTimeField(default=timezone.now)
    uploaded_by = models.ForeignKey(Responder, on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"{self.kind} {self.uuid}"

"""Reports: what one person told the hotline, by text, call or web form."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.fields import EncryptedTextField
from core.geo import Point


class Channel(models.TextChoices):
    SMS = "sms", _("Text message")
    VOICE = "voice", _("Phone call")
    WEB = "web", _("Web form")


class Triage(models.TextChoices):
    UNTRIAGED = "untriaged", _("Not yet triaged")
    SIGHTING = "sighting", _("Sighting")
    HELP_REQUEST = "help_request", _("Request for help")
    RUMOUR_CHECK = "rumour_check", _("Rumour check")
    OTHER_AGENCY = "other_agency", _("Other agency")
    HOSTILE = "hostile", _("Hostile or misdirected")
    NOT_RELEVANT = "not_relevant", _("Not relevant")


# Reports triaged into these never join or open an incident.
DISMISSED_TRIAGE = frozenset({Triage.HOSTILE, Triage.NOT_RELEVANT})


class ReportStatus(models.TextChoices):
    UNPLACED = "unplaced", _("Waiting for a location")
    ATTACHED = "attached", _("Part of an incident")
    DISMISSED = "dismissed", _("Dismissed")


class Report(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    received_at = models.DateTimeField(default=timezone.now)
    observed_at = models.DateTimeField(
        default=timezone.now, help_text=_("When the reporter saw it; used to group reports.")
    )
    # What the reporter wrote often names people: encrypted like the contact number.
    text = EncryptedTextField(blank=True, default="")
    language = models.CharField(max_length=8)

    location_text = models.CharField(max_length=300, blank=True)
    lat = models.FloatField(null=True, blank=True)
    lng = models.FloatField(null=True, blank=True)
    h3_cell = models.BigIntegerField(null=True, blank=True)
    neighbourhood = models.ForeignKey(
        "core.Neighbourhood", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # Never stored in plain: an encrypted value plus a keyed hash for lookups.
    reporter_contact = EncryptedTextField(null=True, blank=True)
    reporter_hash = models.CharField(max_length=64, blank=True, db_index=True)

    triage = models.CharField(max_length=16, choices=Triage.choices, default=Triage.UNTRIAGED)
    status = models.CharField(
        max_length=12, choices=ReportStatus.choices, default=ReportStatus.UNPLACED
    )
    incident = models.ForeignKey(
        "incidents.Incident",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reports",
    )

    # SALUTE: what observers are trained to note. Free text that can describe people,
    # so encrypted like the report itself (the form limits the lengths).
    salute_size = EncryptedTextField(_("size"), blank=True, default="")
    salute_activity = EncryptedTextField(_("activity"), blank=True, default="")
    salute_location = EncryptedTextField(_("location"), blank=True, default="")
    salute_uniform = EncryptedTextField(_("uniform"), blank=True, default="")
    salute_time = EncryptedTextField(_("time"), blank=True, default="")
    salute_equipment = EncryptedTextField(_("equipment"), blank=True, default="")

    inbound_message = models.OneToOneField(
        "messaging.InboundMessage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="report",
    )
    # A random token in the web form makes a double submission one report.
    submission_key = models.UUIDField(null=True, blank=True, unique=True)
    media_count = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["status", "received_at"], name="report_queue_idx"),
            models.Index(fields=["incident", "observed_at"], name="report_incident_idx"),
            # The surge detector counts recent reports by cell (incidents/surge.py).
            models.Index(fields=["h3_cell", "received_at"], name="report_cell_time_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(lat__isnull=True) & models.Q(lng__isnull=True))
                | (
                    models.Q(lat__gte=-90, lat__lte=90, lng__gte=-180, lng__lte=180)
                    & models.Q(h3_cell__isnull=False)
                ),
                name="report_point_valid",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="attached") | models.Q(incident__isnull=False),
                name="report_attached_has_incident",
            ),
            models.CheckConstraint(
                condition=models.Q(channel__in=["sms", "voice", "web"]),
                name="report_channel_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} report {self.uuid}"

    @property
    def point(self) -> Point | None:
        if self.lat is None or self.lng is None:
            return None
        return Point(self.lat, self.lng)

    @property
    def salute(self) -> list[tuple[str, str]]:
        """The SALUTE fields that were filled in, labelled, in order."""
        pairs = [
            (_("Size"), self.salute_size),
            (_("Activity"), self.salute_activity),
            (_("Location"), self.salute_location),
            (_("Uniform"), self.salute_uniform),
            (_("Time"), self.salute_time),
            (_("Equipment"), self.salute_equipment),
        ]
        return [(str(label), value) for label, value in pairs if value]


class ReportPhoto(models.Model):
    """A photo sent with a web report, re-encoded without its metadata (GPS, device),
    stored encrypted (core.crypto.encrypt_bytes) and served only to dispatchers."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="photos")
    file = models.FileField(upload_to="report-photos/%Y/%m/")
    content_type = models.CharField(max_length=40)
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    uploaded_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"photo {self.uuid}"


class SpentChallenge(models.Model):
    """A proof-of-work challenge that was used to file a web report, kept until it
    expires so it cannot be used again. ``digest`` is a SHA-256 of its nonce and salt:
    random values of ours, nothing about the reporter."""

    digest = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"spent challenge {self.digest[:12]}"

"""Subscribers, their areas, and the alerts (and rumour-control messages) sent to them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class SubscriberStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for confirmation")
    ACTIVE = "active", _("Subscribed")
    STOPPED = "stopped", _("Stopped")


class Subscriber(models.Model):
    """A number that asked for verified alerts. Its phone lives encrypted in the
    messaging contact; here only the hash, the language and where it wants alerts."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    contact = models.OneToOneField(
        "messaging.Contact", on_delete=models.PROTECT, related_name="subscriber"
    )
    phone_hash = models.CharField(max_length=64, unique=True)
    language = models.CharField(max_length=8)
    status = models.CharField(
        max_length=8, choices=SubscriberStatus.choices, default=SubscriberStatus.PENDING
    )
    # Double opt-in by a code (web sign-up) or by replying YES (SMS sign-up).
    code_hash = models.CharField(max_length=64, blank=True)
    code_expires_at = models.DateTimeField(null=True, blank=True)
    code_attempts = models.PositiveSmallIntegerField(default=0)
    # How a pending sign-up is confirmed: "sms" (JOIN, then YES from the phone) or "web"
    # (only the code sent to the phone).
    pending_via = models.CharField(max_length=4, blank=True)
    # Areas and language asked for on the web, by someone who may not hold the phone:
    # applied only when the code sent to that phone comes back.
    pending_change = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status"], name="subscriber_status_idx")]

    def __str__(self) -> str:
        return f"subscriber {self.uuid}"


class AreaKind(models.TextChoices):
    NEIGHBOURHOOD = "neighbourhood", _("Neighbourhood")
    ZIP = "zip", _("ZIP code")
    RADIUS = "radius", _("Around a point")


class ZipCode(models.Model):
    """A ZIP code people can subscribe by: its centre and the radius it stands for."""

    code = models.CharField(max_length=10, unique=True)
    lat = models.FloatField()
    lng = models.FloatField()
    radius_m = models.PositiveIntegerField(default=2000)

    def __str__(self) -> str:
        return self.code


class SubscriberArea(models.Model):
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="areas")
    kind = models.CharField(max_length=14, choices=AreaKind.choices)
    neighbourhood = models.ForeignKey(
        "core.Neighbourhood", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    zip_code = models.ForeignKey(
        ZipCode, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    lat = models.FloatField(null=True, blank=True)
    lng = models.FloatField(null=True, blank=True)
    radius_m = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.kind} area"


class SubscriberCell(models.Model):
    """The H3 cells a subscriber's areas cover: the audience of an alert is the
    subscribers of the cells around the incident, found through this index."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="cells")
    h3_cell = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscriber", "h3_cell"], name="subscriber_cell_unique")
        ]
        indexes = [models.Index(fields=["h3_cell", "subscriber"], name="subscriber_cell_idx")]

    def __str__(self) -> str:
        return f"cell {self.h3_cell}"


class AlertKind(models.TextChoices):
    ALERT = "alert", _("Verified alert")
    RUMOUR = "rumour", _("Rumour control")


class AlertTemplate(models.Model):
    """The text of an alert in one language, with {placeholders} filled per incident."""

    kind = models.CharField(max_length=8, choices=AlertKind.choices)
    language = models.CharField(max_length=8)
    body = models.TextField()
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "language"], name="template_kind_language")
        ]

    def __str__(self) -> str:
        return f"{self.kind} template ({self.language})"


class AlertStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting", _("Waiting for a second dispatcher")
    SENDING = "sending", _("Sending")
    PAUSED = "paused", _("Paused")
    SENT = "sent", _("Sent")
    CANCELLED = "cancelled", _("Cancelled")


class Alert(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    incident = models.ForeignKey(
        "incidents.Incident", on_delete=models.PROTECT, related_name="alerts"
    )
    kind = models.CharField(max_length=8, choices=AlertKind.choices)
    status = models.CharField(max_length=10, choices=AlertStatus.choices)
    radius_m = models.PositiveIntegerField()
    # The composed text per language, as approved.
    bodies = models.JSONField(default=dict)
    audience = models.PositiveIntegerField(default=0)
    composed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    approved_at = models.DateTimeField(null=True, blank=True)
    fanned_out_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="alert_status_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.uuid}"

    @property
    def batch(self) -> str:
        return f"alert:{self.uuid}"


class AlertControl(models.Model):
    """The coordinators' kill switch: when off, no alert can be approved and every
    alert in progress is held."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    sending_enabled = models.BooleanField(default=True)
    changed_at = models.DateTimeField(default=timezone.now)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    def __str__(self) -> str:
        return "alert control"

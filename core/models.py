"""Cross-cutting records: the audit trail."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditAction(models.TextChoices):
    REPORT_RECEIVED = "report.received", _("report received")
    REPORT_PLACED = "report.placed", _("report placed on the map")
    REPORT_MOVED = "report.moved", _("report moved to another incident")
    REPORT_SPLIT = "report.split", _("report split into a new incident")
    REPORT_TRIAGED = "report.triaged", _("report triaged")
    REPORT_TEXT_ADDED = "report.text_added", _("text added to a report (sender limit)")
    INCIDENT_SURGE = "incident.surge", _("possible flood of reports flagged")
    INCIDENT_OPENED = "incident.opened", _("incident opened")
    INCIDENT_MERGED = "incident.merged", _("incidents merged")
    INCIDENT_STATUS = "incident.status", _("incident status changed")
    INCIDENT_COLOUR = "incident.colour", _("incident level changed")
    INCIDENT_VIEWED = "incident.viewed", _("incident viewed")
    MESSAGE_RECEIVED = "message.received", _("message received")
    REPORT_PHOTO_VIEWED = "report.photo_viewed", _("report photo viewed")
    REPORT_CONTACT_VIEWED = "report.contact_viewed", _("reporter contact viewed")
    SERVICE_AREA_LOADED = "service_area.loaded", _("service area loaded")
    RESPONDER_SAVED = "responder.saved", _("responder saved")
    RESPONDER_VIEWED = "responder.viewed", _("responder viewed")
    RESPONDER_AVAILABILITY = "responder.availability", _("responder availability changed")
    OFFERS_SENT = "offers.sent", _("offers sent to responders")
    FIELD_REPORT_SAVED = "field_report.saved", _("field report saved")
    EVIDENCE_VIEWED = "evidence.viewed", _("evidence viewed")
    ALERT_COMPOSED = "alert.composed", _("alert composed")
    ALERT_APPROVED = "alert.approved", _("alert approved")
    ALERT_PAUSED = "alert.paused", _("alert paused")
    ALERT_RESUMED = "alert.resumed", _("alert resumed")
    ALERT_CANCELLED = "alert.cancelled", _("alert cancelled")
    ALERTS_SWITCHED = "alerts.switched", _("alert sending switched on or off")
    TEMPLATE_SAVED = "template.saved", _("alert template saved")
    CALL_RECEIVED = "call.received", _("hotline call received")
    CALL_ANSWERED = "call.answered", _("hotline call answered")
    CALL_ENDED = "call.ended", _("hotline call ended")
    VOICEMAIL_RECEIVED = "voicemail.received", _("voicemail received")
    VOICEMAIL_PLAYED = "voicemail.played", _("voicemail played")
    CALLER_NUMBER_VIEWED = "call.number_viewed", _("caller number viewed")
    CALL_VIEWED = "call.viewed", _("hotline call viewed")
    CALLBACK_LOGGED = "call.callback", _("call back logged")
    CALL_REPORT_WRITTEN = "call.report", _("report written during a call")
    DISPATCHER_SHIFT = "dispatcher.shift", _("dispatcher went on or off shift")
    DISPATCHER_LINE_SAVED = "dispatcher.line_saved", _("dispatcher phone saved")
    VOICE_PROMPT_SAVED = "voice.prompt_saved", _("hotline prompt saved")
    RETENTION_PURGED = "retention.purged", _("personal data purged on schedule")
    RETENTION_CHANGED = "retention.changed", _("retention period changed")
    AUDIT_VIEWED = "audit.viewed", _("audit log searched")
    LOGIN = "account.login", _("logged in (password and MFA)")
    LOGIN_FAILED = "account.login_failed", _("failed login")
    LOGOUT = "account.logout", _("logged out")
    ACCOUNT_DISABLED = "account.disabled", _("account disabled")
    REAUTHENTICATED = "account.reauthenticated", _("confirmed password and MFA again")
    PASSWORD_CHANGED = "account.password_changed", _("changed their password")
    MFA_ENROLLED = "mfa.enrolled", _("MFA authenticator added")
    MFA_REMOVED = "mfa.removed", _("MFA authenticator removed")
    MFA_RESET = "mfa.reset", _("two-step login reset by a coordinator")
    MFA_FAILED = "mfa.failed", _("wrong MFA code or passkey")
    RECOVERY_CODES_GENERATED = "mfa.codes_generated", _("recovery codes generated")
    RECOVERY_CODE_USED = "mfa.code_used", _("recovery code used")
    HEARING_SAVED = "hearing.saved", _("hearing added or changed")
    HEARING_CANCELLED = "hearing.cancelled", _("hearing cancelled")
    ACCOMPANIMENT_CHANGED = "accompaniment.changed", _("hearing sign-up made or cancelled")
    REMINDERS_SENT = "hearing.reminders_sent", _("hearing reminders sent")
    VOLUNTEERS_INVITED = "hearing.volunteers_invited", _("volunteers asked to go to a hearing")


class AuditEvent(models.Model):
    """Who did what to which record, and when; never the content itself.

    Rows are only ever inserted. ``detail`` holds identifiers and counts, not text.
    The database refuses UPDATE and DELETE (triggers, ``core.audit_guard``; on
    PostgreSQL also the app role's grants, ``manage.py db_roles``). A migration that
    makes SQLite rebuild this table drops the triggers: it must call
    ``audit_guard.install`` again (``test_audit_guard`` fails until it does).
    """

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=40, choices=AuditAction.choices)
    target_type = models.CharField(max_length=40)
    target_id = models.CharField(max_length=64)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["target_type", "target_id", "at"], name="audit_target_idx"),
            models.Index(fields=["actor", "at"], name="audit_actor_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.target_type}:{self.target_id}"


class RetentionPolicy(models.Model):
    """A coordinator's period for one retention rule (``core.retention``). A rule
    without a row keeps its default; the bounds live with the rules."""

    rule = models.CharField(max_length=32, unique=True)
    days = models.PositiveSmallIntegerField()
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            # Each rule has narrower bounds (core.retention); this catches a stray write.
            models.CheckConstraint(
                condition=models.Q(days__lte=3650), name="retention_days_bounded"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule}: {self.days} days"


class ServiceArea(models.Model):
    """The area a network covers: the union of its neighbourhoods."""

    name = models.CharField(max_length=120, unique=True)
    loaded_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class Neighbourhood(models.Model):
    """A named polygon inside the service area, used to check and name locations.

    The bounding box is stored in indexed columns so a point lookup reads only the few
    polygons whose box contains it; the exact test runs in Python (core.geo).
    """

    area = models.ForeignKey(ServiceArea, on_delete=models.CASCADE, related_name="neighbourhoods")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120)
    geometry = models.JSONField(help_text="GeoJSON Polygon or MultiPolygon, WGS 84.")
    min_lat = models.FloatField()
    min_lng = models.FloatField()
    max_lat = models.FloatField()
    max_lng = models.FloatField()
    label_lat = models.FloatField()
    label_lng = models.FloatField()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["area", "slug"], name="neighbourhood_slug_unique"),
            models.CheckConstraint(
                condition=models.Q(min_lat__lte=models.F("max_lat"))
                & models.Q(min_lng__lte=models.F("max_lng")),
                name="neighbourhood_bbox_ordered",
            ),
        ]
        indexes = [
            models.Index(fields=["min_lat", "max_lat", "min_lng", "max_lng"], name="hood_bbox_idx"),
        ]

    def __str__(self) -> str:
        return self.name

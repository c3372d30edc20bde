"""Incidents: the events that reports describe, and their history."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.geo import Point


class IncidentStatus(models.TextChoices):
    NEW = "new", _("New")
    VERIFYING = "verifying", _("Verifying")
    VERIFIED = "verified", _("Verified")
    UNVERIFIED = "unverified", _("Unverified")
    FALSE = "false", _("False")
    CLOSED = "closed", _("Closed")


# The only moves an incident can make. "unverified" can go back to "verifying" when new
# evidence arrives; anything open can be closed (a duplicate, a merge, nothing to see).
TRANSITIONS: dict[str, frozenset[str]] = {
    IncidentStatus.NEW: frozenset({IncidentStatus.VERIFYING, IncidentStatus.CLOSED}),
    IncidentStatus.VERIFYING: frozenset(
        {
            IncidentStatus.VERIFIED,
            IncidentStatus.UNVERIFIED,
            IncidentStatus.FALSE,
            IncidentStatus.CLOSED,
        }
    ),
    IncidentStatus.VERIFIED: frozenset({IncidentStatus.CLOSED}),
    IncidentStatus.UNVERIFIED: frozenset({IncidentStatus.VERIFYING, IncidentStatus.CLOSED}),
    IncidentStatus.FALSE: frozenset({IncidentStatus.CLOSED}),
    IncidentStatus.CLOSED: frozenset(),
}


class IllegalTransition(ValueError):
    """A status change the incident state machine does not allow."""

    def __init__(self, current: str, requested: str) -> None:
        self.current = current = str(current)
        self.requested = requested = str(requested)
        allowed = ", ".join(sorted(TRANSITIONS.get(current, ()))) or "nothing"
        super().__init__(
            f"An incident that is {current!r} cannot become {requested!r} "
            f"(it can become: {allowed})."
        )


class Level(models.TextChoices):
    RED = "red", _("Red: active enforcement")
    YELLOW = "yellow", _("Yellow: suspicious activity")
    GREEN = "green", _("Green: presence only")
    BLUE = "blue", _("Blue: agency without immigration-arrest power")


LEVEL_SHORT = {
    Level.RED: _("Red"),
    Level.YELLOW: _("Yellow"),
    Level.GREEN: _("Green"),
    Level.BLUE: _("Blue"),
}


class Incident(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(
        max_length=12, choices=IncidentStatus.choices, default=IncidentStatus.NEW
    )
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.YELLOW)

    # Where it happens: the first placed report's point, unless a dispatcher moves it.
    # Later reports do not drag it, so grouping cannot creep across a city.
    lat = models.FloatField()
    lng = models.FloatField()
    h3_cell = models.BigIntegerField()
    neighbourhood = models.ForeignKey(
        "core.Neighbourhood", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    location_text = models.CharField(max_length=300, blank=True)

    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_from"
    )
    # Dispatch: how many verifiers should go, and the response times the console shows.
    verifiers_needed = models.PositiveSmallIntegerField(default=settings.RR_VERIFIERS_NEEDED)
    first_offer_at = models.DateTimeField(null=True, blank=True)
    first_accepted_at = models.DateTimeField(null=True, blank=True)
    first_arrived_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    # When the console last said "not enough verifiers answered: widen the search".
    escalated_at = models.DateTimeField(null=True, blank=True)
    # When more reports than RR_SURGE_REPORTS arrived around it within the surge window
    # (incidents/surge.py): a possible flood of false tips. A flag for dispatchers; it
    # neither hides the reports nor blocks verification.
    surge_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [
            # Matching: cells around a point, within a time window.
            models.Index(fields=["h3_cell", "last_seen"], name="incident_match_idx"),
            # The console: open incidents by latest activity.
            models.Index(fields=["status", "updated_at"], name="incident_console_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=[choice.value for choice in IncidentStatus]),
                name="incident_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(level__in=[choice.value for choice in Level]),
                name="incident_level_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(first_seen__lte=models.F("last_seen")),
                name="incident_seen_ordered",
            ),
            models.CheckConstraint(
                condition=models.Q(lat__gte=-90, lat__lte=90, lng__gte=-180, lng__lte=180),
                name="incident_point_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(status="closed") | models.Q(closed_at__isnull=True),
                name="incident_closed_at_only_when_closed",
            ),
        ]

    def __str__(self) -> str:
        return f"incident {self.uuid}"

    @property
    def point(self) -> Point:
        return Point(self.lat, self.lng)

    @property
    def is_open(self) -> bool:
        return self.status != IncidentStatus.CLOSED

    @property
    def level_short(self) -> str:
        return str(LEVEL_SHORT[Level(self.level)])

    @property
    def place_name(self) -> str:
        if self.neighbourhood_id is not None and self.neighbourhood is not None:
            return self.neighbourhood.name
        return self.location_text

    @property
    def short_id(self) -> str:
        return self.uuid.hex[:6].upper()

    def check_transition(self, status: str) -> None:
        """Raise IllegalTransition unless the state machine allows ``status`` next."""
        if status not in TRANSITIONS.get(self.status, frozenset()):
            raise IllegalTransition(self.status, status)

    def minutes_since_opened(self, moment: datetime | None) -> int | None:
        if moment is None:
            return None
        return max(0, round((moment - self.created_at).total_seconds() / 60))

    @property
    def response_times(self) -> list[tuple[str, int | None]]:
        """Minutes from the incident opening to each step of the response."""
        return [
            (str(_("first offer")), self.minutes_since_opened(self.first_offer_at)),
            (str(_("first acceptance")), self.minutes_since_opened(self.first_accepted_at)),
            (str(_("arrival")), self.minutes_since_opened(self.first_arrived_at)),
            (str(_("decision")), self.minutes_since_opened(self.decided_at)),
        ]

    def allowed_statuses(self) -> list[IncidentStatus]:
        return [s for s in IncidentStatus if s in TRANSITIONS.get(self.status, frozenset())]


class TimelineKind(models.TextChoices):
    OPENED = "opened", _("Opened")
    OFFERED = "offered", _("Responders contacted")
    ACCEPTED = "accepted", _("Responder accepted")
    DECLINED = "declined", _("Responder declined")
    ARRIVED = "arrived", _("Responder arrived")
    FIELD_REPORT = "field_report", _("Field report")
    ESCALATED = "escalated", _("Not enough answers: widen the search")
    SURGE = "surge", _("Possible flood of reports")
    REPORT_ADDED = "report_added", _("Report added")
    REPORT_REMOVED = "report_removed", _("Report removed")
    MERGED_FROM = "merged_from", _("Merged another incident in")
    MERGED_INTO = "merged_into", _("Merged into another incident")
    STATUS = "status", _("Status changed")
    LEVEL = "level", _("Level changed")


class TimelineEntry(models.Model):
    """Every change to an incident, with who made it and why."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timeline")
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=TimelineKind.choices)
    from_value = models.CharField(max_length=40, blank=True)
    to_value = models.CharField(max_length=40, blank=True)
    reason = models.TextField(blank=True)
    report = models.ForeignKey(
        "intake.Report", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    other_incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["incident", "at"], name="timeline_incident_idx")]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%H:%M}"


class ConsoleEventKind(models.TextChoices):
    INCIDENT = "incident", _("Incident changed")
    REPORT = "report", _("Report changed")


class ConsoleEvent(models.Model):
    """An append-only feed of what changed, for the live console and detail pages.

    Each row only names the record; the console renders its current state, so replaying
    events after a reconnect (Last-Event-ID) is idempotent.
    """

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=10, choices=ConsoleEventKind.choices)
    object_uuid = models.UUIDField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.id} {self.kind} {self.object_uuid}"

"""Everything that changes an incident or moves a report between incidents.

Each action runs in one transaction, writes the incident timeline and one audit event,
and publishes console events in the same transaction. Every action takes the incidents
lock (incidents.console.INCIDENTS_LOCK) first: two reports of one event arriving together
cannot open two incidents, a report cannot join an incident that a concurrent merge is
closing, and console events commit in the order of their ids.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import Max, Min
from django.utils import timezone
from django.utils.translation import gettext as _

from core import audit
from core.areas import locate
from core.geo import Point
from core.locks import atomic_serialized, serialize
from core.models import AuditAction
from incidents import console, matching, surge
from incidents.console import INCIDENTS_LOCK
from incidents.models import (
    ConsoleEventKind,
    Incident,
    IncidentStatus,
    Level,
    TimelineEntry,
    TimelineKind,
)
from intake.models import DISMISSED_TRIAGE, Report, ReportStatus, Triage


class ActionRefused(ValueError):
    """The action cannot be done as asked; the message says why, for the dispatcher."""


# Other apps add rules without incidents importing them: a verification gate returns a
# reason to refuse "verified" (dispatch: not enough confirmations from the scene), a
# status listener reacts to a change in the same transaction (dispatch: cancel offers).
VerificationGate = Callable[[Incident], "str | None"]
StatusListener = Callable[[Incident, str, str], None]
MergeListener = Callable[[Incident, Incident], None]
_verification_gates: list[VerificationGate] = []
_status_listeners: list[StatusListener] = []
_merge_listeners: list[MergeListener] = []
DECISIONS = frozenset({IncidentStatus.VERIFIED, IncidentStatus.UNVERIFIED, IncidentStatus.FALSE})


def add_verification_gate(gate: VerificationGate) -> None:
    if gate not in _verification_gates:
        _verification_gates.append(gate)


def add_status_listener(listener: StatusListener) -> None:
    if listener not in _status_listeners:
        _status_listeners.append(listener)


def add_merge_listener(listener: MergeListener) -> None:
    """Called with (source, target) after the reports moved, before the source closes."""
    if listener not in _merge_listeners:
        _merge_listeners.append(listener)


def _actor(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


def _require_reason(reason: str) -> str:
    cleaned = (reason or "").strip()
    if not cleaned:
        raise ActionRefused(_("Give a reason: it goes on the incident's timeline."))
    return cleaned


def _timeline(incident: Incident, actor: Any, kind: TimelineKind, **fields: Any) -> None:
    TimelineEntry.objects.create(incident=incident, actor=_actor(actor), kind=kind, **fields)


def _touch(incident: Incident) -> None:
    incident.updated_at = timezone.now()


def _refresh_bounds(incident: Incident) -> bool:
    """Recompute first and last seen from the reports; False when none are left."""
    bounds = Report.objects.filter(incident=incident).aggregate(
        first=Min("observed_at"), last=Max("observed_at")
    )
    if bounds["first"] is None:
        return False
    incident.first_seen = bounds["first"]
    incident.last_seen = bounds["last"]
    return True


def _close_if_empty(incident: Incident, actor: Any, reason: str) -> None:
    if _refresh_bounds(incident):
        _touch(incident)
        incident.save()
        return
    if incident.status != IncidentStatus.CLOSED:
        previous = incident.status
        incident.status = IncidentStatus.CLOSED
        incident.closed_at = timezone.now()
        for listener in _status_listeners:
            listener(incident, previous, IncidentStatus.CLOSED)
        _timeline(
            incident,
            actor,
            TimelineKind.STATUS,
            from_value=previous,
            to_value=IncidentStatus.CLOSED,
            reason=reason,
        )
    _touch(incident)
    incident.save()


def _open_incident(actor: Any, report: Report, reason: str = "") -> Incident:
    point = report.point
    if point is None:
        raise ActionRefused(_("Place the report on the map first."))
    incident = Incident.objects.create(
        lat=point.lat,
        lng=point.lng,
        h3_cell=point.cell(),
        neighbourhood=report.neighbourhood,
        location_text=report.location_text[:300],
        first_seen=report.observed_at,
        last_seen=report.observed_at,
    )
    _timeline(incident, actor, TimelineKind.OPENED, report=report, reason=reason)
    report.incident = incident
    report.status = ReportStatus.ATTACHED
    report.save(update_fields=["incident", "status"])
    audit.record(actor=actor, action=AuditAction.INCIDENT_OPENED, target=incident)
    console.publish_all(
        [(ConsoleEventKind.INCIDENT, incident.uuid), (ConsoleEventKind.REPORT, report.uuid)]
    )
    return incident


def _add_report(actor: Any, incident: Incident, report: Report, reason: str = "") -> None:
    report.incident = incident
    report.status = ReportStatus.ATTACHED
    report.save(update_fields=["incident", "status"])
    incident.first_seen = min(incident.first_seen, report.observed_at)
    incident.last_seen = max(incident.last_seen, report.observed_at)
    if not incident.location_text and report.location_text:
        incident.location_text = report.location_text[:300]
    _touch(incident)
    # Only what changed: matching hands over the incident with just the columns it read.
    incident.save(update_fields=["first_seen", "last_seen", "location_text", "updated_at"])
    _timeline(incident, actor, TimelineKind.REPORT_ADDED, report=report, reason=reason)
    console.publish_all(
        [(ConsoleEventKind.INCIDENT, incident.uuid), (ConsoleEventKind.REPORT, report.uuid)]
    )


def _match_or_open(actor: Any, report: Report) -> Incident:
    point = report.point
    if point is None:
        raise ActionRefused(_("Place the report on the map first."))
    serialize(INCIDENTS_LOCK)
    found = matching.find_incident(point, report.observed_at)
    if found is None:
        return _open_incident(actor, report)
    # Not read again FOR UPDATE: every change to an incident's reports and time span
    # happens under the incidents lock, held here, so what matching read is current;
    # the save writes only those columns, so a status changed meanwhile is kept.
    _add_report(actor, found, report)
    return found


def file_new_report(*, report: Report) -> Incident | None:
    """Group a report that intake has just saved, in intake's transaction.

    A located report joins the nearest open incident within distance and time, or opens
    one; a report without a location waits in the console's unplaced queue.
    """
    serialize(INCIDENTS_LOCK)
    if report.point is None or report.triage in DISMISSED_TRIAGE:
        console.publish(ConsoleEventKind.REPORT, report.uuid)
        return None
    incident = _match_or_open(None, report)
    surge.check(incident, report)
    return incident


@atomic_serialized(INCIDENTS_LOCK)
def place_report(*, actor: Any, report: Report, point: Point) -> Incident:
    """Give an unplaced report its location; it then joins or opens an incident."""
    report = Report.objects.select_for_update().get(pk=report.pk)
    if report.status != ReportStatus.UNPLACED:
        raise ActionRefused(_("Only a report waiting for a location can be placed."))
    report.neighbourhood = locate(point)
    report.lat, report.lng, report.h3_cell = point.lat, point.lng, point.cell()
    report.save(update_fields=["lat", "lng", "h3_cell", "neighbourhood"])
    incident = _match_or_open(actor, report)
    audit.record(actor=actor, action=AuditAction.REPORT_PLACED, target=report)
    return incident


@atomic_serialized(INCIDENTS_LOCK)
def move_report(*, actor: Any, report: Report, incident: Incident, reason: str = "") -> Incident:
    """Attach a report (placed or not) to another open incident."""
    report = Report.objects.select_for_update().get(pk=report.pk)
    target = Incident.objects.select_for_update().get(pk=incident.pk)
    if not target.is_open:
        raise ActionRefused(_("That incident is closed; reports cannot join it."))
    if report.incident_id == target.pk:
        raise ActionRefused(_("The report is already part of that incident."))
    if report.status == ReportStatus.DISMISSED:
        raise ActionRefused(_("The report was dismissed; change its triage first."))
    previous = report.incident
    _add_report(actor, target, report, reason=reason.strip())
    if previous is not None:
        previous = Incident.objects.select_for_update().get(pk=previous.pk)
        _timeline(
            previous,
            actor,
            TimelineKind.REPORT_REMOVED,
            report=report,
            other_incident=target,
            reason=reason.strip(),
        )
        _close_if_empty(previous, actor, _("All its reports were moved to another incident."))
        console.publish(ConsoleEventKind.INCIDENT, previous.uuid)
    audit.record(actor=actor, action=AuditAction.REPORT_MOVED, target=report)
    return target


@atomic_serialized(INCIDENTS_LOCK)
def split_report(*, actor: Any, report: Report, reason: str = "") -> Incident:
    """Take a report out of its incident into a new incident of its own."""
    report = Report.objects.select_for_update().get(pk=report.pk)
    if report.incident_id is None:
        raise ActionRefused(_("The report is not part of an incident."))
    if report.point is None:
        raise ActionRefused(_("A report needs a location to become its own incident."))
    previous = Incident.objects.select_for_update().get(pk=report.incident_id)
    if Report.objects.filter(incident=previous).count() < 2:
        raise ActionRefused(_("This is the incident's only report; there is nothing to split."))
    new = _open_incident(actor, report, reason=reason.strip())
    _timeline(
        previous,
        actor,
        TimelineKind.REPORT_REMOVED,
        report=report,
        other_incident=new,
        reason=reason.strip(),
    )
    _close_if_empty(previous, actor, "")
    console.publish(ConsoleEventKind.INCIDENT, previous.uuid)
    audit.record(actor=actor, action=AuditAction.REPORT_SPLIT, target=report)
    return new


@atomic_serialized(INCIDENTS_LOCK)
def merge_incidents(*, actor: Any, source: Incident, target: Incident, reason: str) -> Incident:
    """Move every report of ``source`` into ``target`` and close ``source``."""
    reason = _require_reason(reason)
    if source.pk == target.pk:
        raise ActionRefused(_("An incident cannot be merged into itself."))
    locked = {
        i.pk: i for i in Incident.objects.select_for_update().filter(pk__in=[source.pk, target.pk])
    }
    source, target = locked[source.pk], locked[target.pk]
    if not source.is_open or not target.is_open:
        raise ActionRefused(_("Both incidents must be open to merge them."))
    moved_reports = list(Report.objects.filter(incident=source).values_list("uuid", flat=True))
    moved = Report.objects.filter(incident=source).update(incident=target)
    for merge_listener in _merge_listeners:
        merge_listener(source, target)
    _refresh_bounds(target)
    # A possible flood moved in with the reports: keep its warning (incidents/surge.py).
    if source.surge_at is not None and (
        target.surge_at is None or source.surge_at < target.surge_at
    ):
        target.surge_at = source.surge_at
    _touch(target)
    target.save()
    _timeline(
        target,
        actor,
        TimelineKind.MERGED_FROM,
        other_incident=source,
        reason=reason,
        to_value=str(moved),
    )
    previous_status = source.status
    source.status = IncidentStatus.CLOSED
    source.closed_at = timezone.now()
    source.merged_into = target
    for listener in _status_listeners:
        listener(source, previous_status, IncidentStatus.CLOSED)
    _touch(source)
    source.save()
    _timeline(source, actor, TimelineKind.MERGED_INTO, other_incident=target, reason=reason)
    _timeline(
        source,
        actor,
        TimelineKind.STATUS,
        from_value=previous_status,
        to_value=IncidentStatus.CLOSED,
        reason=reason,
    )
    audit.record(
        actor=actor,
        action=AuditAction.INCIDENT_MERGED,
        target=target,
        source=str(source.uuid),
        reports=moved,
    )
    console.publish(ConsoleEventKind.INCIDENT, source.uuid)
    console.publish(ConsoleEventKind.INCIDENT, target.uuid)
    for report_uuid in moved_reports:
        console.publish(ConsoleEventKind.REPORT, report_uuid)
    return target


@atomic_serialized(INCIDENTS_LOCK)
def change_status(
    *, actor: Any, incident: Incident, status: IncidentStatus, reason: str
) -> Incident:
    """Move the incident through its state machine; IllegalTransition if not allowed."""
    reason = _require_reason(reason)
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    incident.check_transition(status)
    if status == IncidentStatus.VERIFIED:
        for gate in _verification_gates:
            refusal = gate(incident)
            if refusal:
                raise ActionRefused(refusal)
    previous = incident.status
    incident.status = status
    incident.closed_at = timezone.now() if status == IncidentStatus.CLOSED else None
    if status in DECISIONS:
        incident.decided_at = timezone.now()
    _touch(incident)
    incident.save()
    for listener in _status_listeners:
        listener(incident, previous, status)
    _timeline(
        incident, actor, TimelineKind.STATUS, from_value=previous, to_value=status, reason=reason
    )
    audit.record(
        actor=actor,
        action=AuditAction.INCIDENT_STATUS,
        target=incident,
        from_status=previous,
        to_status=status,
    )
    console.publish(ConsoleEventKind.INCIDENT, incident.uuid)
    return incident


@atomic_serialized(INCIDENTS_LOCK)
def change_level(*, actor: Any, incident: Incident, level: Level, reason: str) -> Incident:
    reason = _require_reason(reason)
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    if not incident.is_open:
        raise ActionRefused(_("A closed incident's level cannot change."))
    if incident.level == level:
        raise ActionRefused(_("The incident already has that level."))
    previous = incident.level
    incident.level = level
    _touch(incident)
    incident.save()
    _timeline(
        incident, actor, TimelineKind.LEVEL, from_value=previous, to_value=level, reason=reason
    )
    audit.record(
        actor=actor,
        action=AuditAction.INCIDENT_COLOUR,
        target=incident,
        from_level=previous,
        to_level=level,
    )
    console.publish(ConsoleEventKind.INCIDENT, incident.uuid)
    return incident


@atomic_serialized(INCIDENTS_LOCK)
def triage_report(*, actor: Any, report: Report, triage: Triage) -> Report:
    """Categorise a report. Hostile and irrelevant reports leave their incident and the
    queue; restoring one brings it back (grouped again when it has a location)."""
    report = Report.objects.select_for_update().get(pk=report.pk)
    previous_triage = report.triage
    if previous_triage == triage:
        return report
    report.triage = triage
    if triage in DISMISSED_TRIAGE:
        previous_incident = report.incident
        report.incident = None
        report.status = ReportStatus.DISMISSED
        report.save(update_fields=["triage", "incident", "status"])
        if previous_incident is not None:
            locked = Incident.objects.select_for_update().get(pk=previous_incident.pk)
            _timeline(
                locked,
                actor,
                TimelineKind.REPORT_REMOVED,
                report=report,
                reason=str(Triage(triage).label),
            )
            _close_if_empty(locked, actor, _("Its only report was dismissed."))
            console.publish(ConsoleEventKind.INCIDENT, locked.uuid)
        console.publish(ConsoleEventKind.REPORT, report.uuid)
    elif report.status == ReportStatus.DISMISSED:
        report.status = ReportStatus.UNPLACED
        report.save(update_fields=["triage", "status"])
        if report.point is not None:
            _match_or_open(actor, report)
        console.publish(ConsoleEventKind.REPORT, report.uuid)
    else:
        report.save(update_fields=["triage"])
        if report.incident_id is not None:
            incident = Incident.objects.get(pk=report.incident_id)
            console.publish(ConsoleEventKind.INCIDENT, incident.uuid)
        else:
            console.publish(ConsoleEventKind.REPORT, report.uuid)
    audit.record(
        actor=actor,
        action=AuditAction.REPORT_TRIAGED,
        target=report,
        from_triage=previous_triage,
        to_triage=triage,
    )
    return report

"""Reads for the console. Each list is one query (plus pagination's count)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from core import crypto
from core.fields import Sealed
from core.geo import distance_meters
from core.models import Neighbourhood
from incidents import extensions
from incidents.models import ConsoleEventKind, Incident, IncidentStatus, TimelineEntry
from intake.models import Report, ReportStatus

SUMMARY_CHARS = 160


def _open_plain() -> QuerySet[Incident]:
    """Open incidents with their neighbourhood only (for choice lists)."""
    return (
        Incident.objects.exclude(status=IncidentStatus.CLOSED)
        .select_related("neighbourhood")
        .order_by("-updated_at", "-pk")
    )


def open_incidents() -> QuerySet[Incident]:
    """Open incidents, latest activity first, with what a console row shows.

    The latest report's text is encrypted and bound to that report's uuid, so both come
    back from one subquery each and ``with_summaries`` decrypts them.
    """
    latest = Report.objects.filter(incident=OuterRef("pk")).order_by("-observed_at", "-pk")
    extra = {name: make() for name, make in extensions.row_annotations.items()}
    return (
        Incident.objects.exclude(status=IncidentStatus.CLOSED)
        .select_related("neighbourhood")
        .annotate(
            report_count=Count("reports"),
            latest_report_uuid=Subquery(latest.values("uuid")[:1]),
            latest_text_sealed=Subquery(latest.values("text")[:1]),
            **extra,
        )
        .order_by("-updated_at", "-pk")
    )


def with_summaries(incidents: Iterable[Incident]) -> list[Incident]:
    """Decrypt each incident's latest report text into ``incident.summary``."""
    rows = list(incidents)
    context_prefix = f"{Report._meta.db_table}.text."
    for incident in rows:
        sealed = getattr(incident, "latest_text_sealed", None)
        report_uuid = getattr(incident, "latest_report_uuid", None)
        summary = ""
        if sealed and report_uuid:
            token = sealed.token if isinstance(sealed, Sealed) else str(sealed)
            try:
                summary = crypto.decrypt(token, context=f"{context_prefix}{report_uuid}")
            except crypto.DecryptionError:
                summary = str(_("(this text cannot be read)"))
        incident.summary = summary  # type: ignore[attr-defined]
    return rows


def unplaced_reports() -> QuerySet[Report]:
    return (
        Report.objects.filter(status=ReportStatus.UNPLACED)
        .select_related("neighbourhood")
        .order_by("-received_at", "-pk")
    )


def incident_detail(incident_uuid: uuid.UUID | str) -> Incident:
    # Neither its reports nor its timeline are loaded here: the page shows each a page
    # at a time (incident_reports, incident_timeline), and a flooded incident has
    # thousands of both.
    return Incident.objects.select_related("neighbourhood", "merged_into").get(uuid=incident_uuid)


def incident_timeline(incident: Incident) -> QuerySet[TimelineEntry]:
    """The incident's timeline, oldest first, ready to be paginated. Not the entries'
    reports: the page does not show them."""
    return (
        TimelineEntry.objects.filter(incident=incident)
        .select_related("actor", "other_incident")
        .order_by("at", "pk")
    )


def incident_reports(incident: Incident) -> QuerySet[Report]:
    """The incident's reports in the order they were seen, ready to be paginated: a
    page of them costs one query plus one for their photos."""
    return (
        Report.objects.filter(incident=incident)
        .select_related("neighbourhood")
        .prefetch_related("photos")
        .order_by("observed_at", "pk")
    )


def merge_candidates(incident: Incident, *, limit: int = 20, scan: int = 200) -> list[Incident]:
    """Other open incidents this one may be merged into: the nearest of the ``scan`` most
    recently active, since duplicates are close in both space and time."""
    recent = list(_open_plain().exclude(pk=incident.pk)[:scan])
    recent.sort(key=lambda other: distance_meters(other.point, incident.point))
    return recent[:limit]


def attach_candidates(report: Report, *, limit: int = 50, scan: int = 200) -> list[Incident]:
    """Open incidents a report may be attached to: nearest first when it has a location,
    otherwise the most recently active."""
    incidents = _open_plain()
    if report.incident_id is not None:
        incidents = incidents.exclude(pk=report.incident_id)
    recent = list(incidents[:scan])
    point = report.point
    if point is not None:
        recent.sort(key=lambda incident: distance_meters(incident.point, point))
    return recent[:limit]


def neighbourhoods() -> QuerySet[Neighbourhood]:
    return Neighbourhood.objects.order_by("name")


def incident_map_point(incident: Incident) -> dict[str, Any]:
    return {
        "id": str(incident.uuid),
        "lat": incident.lat,
        "lng": incident.lng,
        "level": incident.level,
        "label": f"#{incident.short_id} {incident.neighbourhood or incident.location_text or ''}",
        "url": f"/console/incidents/{incident.uuid}/",
    }


def console_payloads(
    items: list[tuple[str, str]], *, language: str
) -> dict[tuple[str, str], dict[str, Any]]:
    """The current state of each (kind, uuid), rendered for the console in ``language``.

    Two queries whatever the number of items: one for incidents, one for reports.
    """
    incident_ids = {u for kind, u in items if kind == ConsoleEventKind.INCIDENT}
    report_ids = {u for kind, u in items if kind == ConsoleEventKind.REPORT}
    result: dict[tuple[str, str], dict[str, Any]] = {}
    with translation.override(language):
        if incident_ids:
            matching_rows = open_incidents().filter(uuid__in=incident_ids)
            found = {str(i.uuid): i for i in with_summaries(matching_rows)}
            for object_id in incident_ids:
                incident = found.get(object_id)
                payload: dict[str, Any] = {"id": object_id, "open": incident is not None}
                if incident is not None:
                    payload["html"] = render_to_string(
                        "incidents/console.html#incident-row",
                        {"incident": incident, "row_templates": extensions.row_templates},
                    )
                    payload["point"] = incident_map_point(incident)
                result[(ConsoleEventKind.INCIDENT, object_id)] = payload
        if report_ids:
            queued = {str(r.uuid): r for r in unplaced_reports().filter(uuid__in=report_ids)}
            for object_id in report_ids:
                report = queued.get(object_id)
                payload = {"id": object_id, "queued": report is not None}
                if report is not None:
                    payload["html"] = render_to_string(
                        "incidents/console.html#unplaced-row", {"report": report}
                    )
                result[(ConsoleEventKind.REPORT, object_id)] = payload
    return result

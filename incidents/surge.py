"""The surge circuit breaker: a flood of reports around one place is flagged.

A flood of false tips for one area groups into one incident anyway (matching), and no
number of reports can send an alert: alerts need responders' field confirmation and a
second dispatcher (alerts.actions). What a flood can still do is bury the console, so
when more than ``RR_SURGE_REPORTS`` reports arrive within ``RR_SURGE_WINDOW_MINUTES``
in one H3 cell of resolution ``RR_SURGE_RESOLUTION`` (and its neighbours), the incident
each new report joins is flagged once: ``surge_at``, a timeline entry, an audit event,
and a "possible flood" badge on its console row and page.
"""

from __future__ import annotations

from datetime import timedelta

import h3
from django.conf import settings
from django.utils import timezone

from core import audit
from core.models import AuditAction
from incidents import console
from incidents.models import ConsoleEventKind, Incident, TimelineEntry, TimelineKind
from intake.models import Report


def area_cells(cell: int) -> list[int]:
    """The report-resolution cells of the surge cell around ``cell`` and its ring of
    neighbours, so a flood straddling a cell edge is counted whole."""
    fine = h3.get_resolution(h3.int_to_str(cell))
    coarse = min(settings.RR_SURGE_RESOLUTION, fine)
    parent = h3.cell_to_parent(h3.int_to_str(cell), coarse)
    return [
        int(h3.str_to_int(child))
        for area in h3.grid_disk(parent, 1)
        for child in h3.cell_to_children(area, fine)
    ]


def recent_reports_around(cell: int) -> int:
    since = timezone.now() - timedelta(minutes=settings.RR_SURGE_WINDOW_MINUTES)
    return Report.objects.filter(h3_cell__in=area_cells(cell), received_at__gte=since).count()


def check(incident: Incident, report: Report) -> bool:
    """Flag ``incident`` if the report that just joined it is part of a surge. Runs in
    the caller's transaction under the incidents lock; True when it tripped now."""
    if incident.surge_at is not None or report.h3_cell is None:
        return False
    count = recent_reports_around(report.h3_cell)
    if count <= settings.RR_SURGE_REPORTS:
        return False
    incident.surge_at = timezone.now()
    incident.save(update_fields=["surge_at"])
    TimelineEntry.objects.create(incident=incident, kind=TimelineKind.SURGE, to_value=str(count))
    audit.record(
        actor=None,
        action=AuditAction.INCIDENT_SURGE,
        target=incident,
        reports=count,
        window_minutes=settings.RR_SURGE_WINDOW_MINUTES,
    )
    console.publish(ConsoleEventKind.INCIDENT, incident.uuid)
    return True

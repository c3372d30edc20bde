"""The dispatcher console: thin views over incidents.selectors and incidents.actions."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.db import connection
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from core import audit, crypto
from core.areas import OutsideServiceArea, as_feature_collection
from core.models import AuditAction
from incidents import actions, extensions, live, selectors
from incidents.console import latest_event_id
from incidents.forms import (
    LevelForm,
    MergeForm,
    MoveReportForm,
    PlaceReportForm,
    SplitReportForm,
    StatusForm,
    TriageForm,
)
from incidents.models import IllegalTransition, Incident, Level
from intake.actions import photo_context
from intake.models import Report, ReportPhoto, ReportStatus, Triage
from messaging.selectors import stuck_message_count

PAGE_SIZE = 50


def dispatch_view(view: Any) -> Any:
    """Login first (redirect), then the dispatching permission (403)."""
    return login_required(permission_required("incidents.view_console", raise_exception=True)(view))


def _is_live_refresh(request: HttpRequest) -> bool:
    """A background refresh of a detail page's body (static/rr/detail.js). It must not
    consume the flash messages meant for the response to the dispatcher's own action."""
    return request.headers.get("HX-Target") in {"incident-body", "report-body"}


def _map_config() -> str:
    return json.dumps(
        {
            "tiles": settings.RR_MAP_TILE_URL,
            "attribution": settings.RR_MAP_TILE_ATTRIBUTION,
            "area": "/console/area.geojson",
        }
    )


@dispatch_view
@require_GET
def console(request: HttpRequest) -> HttpResponse:
    # Read the event position before the rows: a change committed in between then shows
    # up on the stream rather than in neither place.
    since = latest_event_id()
    incidents = Paginator(selectors.open_incidents(), PAGE_SIZE).get_page(request.GET.get("page"))
    incidents.object_list = selectors.with_summaries(incidents.object_list)
    unplaced = Paginator(selectors.unplaced_reports(), PAGE_SIZE).get_page(
        request.GET.get("unplaced")
    )
    return render(
        request,
        "incidents/console.html",
        {
            "incidents": incidents,
            "unplaced": unplaced,
            "map_points": [selectors.incident_map_point(i) for i in incidents],
            "map_config": _map_config(),
            "last_event_id": since,
            "stuck_messages": stuck_message_count(),
            "row_templates": extensions.row_templates,
            "sections": [
                {"template": section.template, **section.context(request)}
                for section in extensions.sections
            ],
            "live_rows": incidents.number == 1,
            "live_unplaced": unplaced.number == 1,
        },
    )


@dispatch_view
@require_GET
def console_events(request: HttpRequest) -> HttpResponseBase:
    raw = request.headers.get("Last-Event-ID") or request.GET.get("after") or ""
    after_id = int(raw) if raw.isdigit() else None
    # The stream reads through the process's hub, never this request's connection; close
    # it now rather than hold it for as long as the dispatcher keeps the console open.
    connection.close()
    response = StreamingHttpResponse(
        live.stream(after_id=after_id, language=request.LANGUAGE_CODE),
        content_type="text/event-stream",
    )
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"
    return response


@dispatch_view
@require_GET
def area_geojson(request: HttpRequest) -> JsonResponse:
    return JsonResponse(as_feature_collection(selectors.neighbourhoods()))


def _incident_or_404(incident_uuid: str) -> Incident:
    try:
        return selectors.incident_detail(incident_uuid)
    except Incident.DoesNotExist as exc:
        raise Http404(_("No such incident.")) from exc


def _render_incident(
    request: HttpRequest, incident: Incident, *, since: int, status: int = 200, **forms: Any
) -> HttpResponse:
    candidates = selectors.merge_candidates(incident) if incident.is_open else []
    context = {
        "incident": incident,
        # Paginated: a flood of reports for one place must not make its page unusable.
        "reports": Paginator(selectors.incident_reports(incident), PAGE_SIZE).get_page(
            request.GET.get("reports")
        ),
        "timeline": Paginator(selectors.incident_timeline(incident), PAGE_SIZE).get_page(
            request.GET.get("timeline")
        ),
        "status_form": forms.get("status_form") or StatusForm(incident=incident),
        "level_form": forms.get("level_form") or LevelForm(initial={"level": incident.level}),
        "merge_form": forms.get("merge_form") or MergeForm(candidates=candidates),
        "has_merge_candidates": bool(candidates),
        "map_config": _map_config(),
        "map_points": [selectors.incident_map_point(incident)],
        "last_event_id": since,
        "triage_choices": Triage.choices,
        "live_refresh": _is_live_refresh(request),
        "panels": [
            {"template": panel.template, **panel.context(request, incident)}
            for panel in extensions.panels
        ],
    }
    return render(request, "incidents/incident_detail.html", context, status=status)


@dispatch_view
@require_GET
def incident_detail(request: HttpRequest, incident_uuid: str) -> HttpResponse:
    since = latest_event_id()
    incident = _incident_or_404(incident_uuid)
    return _render_incident(request, incident, since=since)


def _refused(request: HttpRequest, exc: Exception) -> None:
    messages.error(request, str(exc))


@dispatch_view
@require_POST
def incident_status(request: HttpRequest, incident_uuid: str) -> HttpResponse:
    since = latest_event_id()
    incident = _incident_or_404(incident_uuid)
    form = StatusForm(request.POST, incident=incident)
    if not form.is_valid():
        return _render_incident(request, incident, since=since, status=422, status_form=form)
    try:
        actions.change_status(
            actor=request.user,
            incident=incident,
            status=form.cleaned_status,
            reason=form.cleaned_data["reason"],
        )
    except (IllegalTransition, actions.ActionRefused) as exc:
        _refused(request, exc)
    else:
        messages.success(request, _("Status changed."))
    return redirect("incidents:incident", incident_uuid=incident.uuid)


@dispatch_view
@require_POST
def incident_level(request: HttpRequest, incident_uuid: str) -> HttpResponse:
    since = latest_event_id()
    incident = _incident_or_404(incident_uuid)
    form = LevelForm(request.POST)
    if not form.is_valid():
        return _render_incident(request, incident, since=since, status=422, level_form=form)
    try:
        actions.change_level(
            actor=request.user,
            incident=incident,
            level=Level(form.cleaned_data["level"]),
            reason=form.cleaned_data["reason"],
        )
    except actions.ActionRefused as exc:
        _refused(request, exc)
    else:
        messages.success(request, _("Level changed."))
    return redirect("incidents:incident", incident_uuid=incident.uuid)


@dispatch_view
@require_POST
def incident_merge(request: HttpRequest, incident_uuid: str) -> HttpResponse:
    since = latest_event_id()
    incident = _incident_or_404(incident_uuid)
    form = MergeForm(request.POST, candidates=selectors.merge_candidates(incident))
    if not form.is_valid():
        return _render_incident(request, incident, since=since, status=422, merge_form=form)
    target = form.target_incident()
    try:
        actions.merge_incidents(
            actor=request.user, source=incident, target=target, reason=form.cleaned_data["reason"]
        )
    except actions.ActionRefused as exc:
        _refused(request, exc)
        return redirect("incidents:incident", incident_uuid=incident.uuid)
    messages.success(request, _("Merged. Its reports are now part of this incident."))
    return redirect("incidents:incident", incident_uuid=target.uuid)


# Reports


def _report_or_404(report_uuid: str) -> Report:
    return get_object_or_404(
        Report.objects.select_related("incident", "neighbourhood").prefetch_related("photos"),
        uuid=report_uuid,
    )


def _render_report(
    request: HttpRequest, report: Report, *, since: int, status: int = 200, **forms: Any
) -> HttpResponse:
    candidates = selectors.attach_candidates(report)
    context = {
        "report": report,
        "place_form": forms.get("place_form") or PlaceReportForm(),
        "move_form": forms.get("move_form") or MoveReportForm(candidates=candidates),
        "has_move_candidates": bool(candidates),
        "split_form": SplitReportForm(),
        "triage_form": forms.get("triage_form") or TriageForm(initial={"triage": report.triage}),
        "map_config": _map_config(),
        # Open incidents nearby help the dispatcher decide where the report belongs.
        "map_points": [selectors.incident_map_point(c) for c in candidates]
        + (
            [
                {
                    "id": str(report.uuid),
                    "lat": report.lat,
                    "lng": report.lng,
                    "level": "report",
                    "label": _("This report"),
                    "url": "",
                }
            ]
            if report.point
            else []
        ),
        "last_event_id": since,
        "can_place": report.status == ReportStatus.UNPLACED,
        "revealed_number": forms.get("revealed_number"),
        "live_refresh": _is_live_refresh(request),
        "report_panels": [
            {"template": panel.template, **panel.context(request, report)}
            for panel in extensions.report_panels
        ],
    }
    return render(request, "incidents/report_detail.html", context, status=status)


@dispatch_view
@require_GET
def report_detail(request: HttpRequest, report_uuid: str) -> HttpResponse:
    since = latest_event_id()
    return _render_report(request, _report_or_404(report_uuid), since=since)


@dispatch_view
@require_POST
def report_place(request: HttpRequest, report_uuid: str) -> HttpResponse:
    since = latest_event_id()
    report = _report_or_404(report_uuid)
    form = PlaceReportForm(request.POST)
    if not form.is_valid():
        return _render_report(request, report, since=since, status=422, place_form=form)
    try:
        incident = actions.place_report(
            actor=request.user, report=report, point=form.cleaned_data["point"]
        )
    except (actions.ActionRefused, OutsideServiceArea) as exc:
        _refused(request, exc)
        return redirect("incidents:report", report_uuid=report.uuid)
    messages.success(request, _("Placed. The report is now part of this incident."))
    return redirect("incidents:incident", incident_uuid=incident.uuid)


@dispatch_view
@require_POST
def report_move(request: HttpRequest, report_uuid: str) -> HttpResponse:
    since = latest_event_id()
    report = _report_or_404(report_uuid)
    candidates = selectors.attach_candidates(report)
    form = MoveReportForm(request.POST, candidates=candidates)
    if not form.is_valid():
        return _render_report(request, report, since=since, status=422, move_form=form)
    try:
        target = actions.move_report(
            actor=request.user,
            report=report,
            incident=form.target_incident(),
            reason=form.cleaned_data["reason"],
        )
    except actions.ActionRefused as exc:
        _refused(request, exc)
        return redirect("incidents:report", report_uuid=report.uuid)
    messages.success(request, _("The report moved to this incident."))
    return redirect("incidents:incident", incident_uuid=target.uuid)


@dispatch_view
@require_POST
def report_split(request: HttpRequest, report_uuid: str) -> HttpResponse:
    report = _report_or_404(report_uuid)
    form = SplitReportForm(request.POST)
    form.is_valid()
    try:
        new = actions.split_report(
            actor=request.user, report=report, reason=form.cleaned_data.get("reason", "")
        )
    except actions.ActionRefused as exc:
        _refused(request, exc)
        return redirect("incidents:report", report_uuid=report.uuid)
    messages.success(request, _("The report is now an incident of its own."))
    return redirect("incidents:incident", incident_uuid=new.uuid)


@dispatch_view
@require_POST
def report_triage(request: HttpRequest, report_uuid: str) -> HttpResponse:
    since = latest_event_id()
    report = _report_or_404(report_uuid)
    form = TriageForm(request.POST)
    if not form.is_valid():
        return _render_report(request, report, since=since, status=422, triage_form=form)
    actions.triage_report(
        actor=request.user, report=report, triage=Triage(form.cleaned_data["triage"])
    )
    messages.success(request, _("Triage saved."))
    return redirect("incidents:report", report_uuid=report.uuid)


@dispatch_view
@require_GET
def report_photo(request: HttpRequest, report_uuid: str, photo_uuid: str) -> HttpResponse:
    photo = get_object_or_404(ReportPhoto, uuid=photo_uuid, report__uuid=report_uuid)
    with photo.file.open("rb") as handle:
        sealed = handle.read()
    try:
        data = crypto.decrypt_bytes(sealed, context=photo_context(photo))
    except crypto.DecryptionError as exc:
        raise Http404(_("This photo cannot be read.")) from exc
    audit.record(actor=request.user, action=AuditAction.REPORT_PHOTO_VIEWED, target=photo)
    response = HttpResponse(data, content_type=photo.content_type)
    response["Content-Disposition"] = "inline"
    return response


@dispatch_view
@require_POST
def report_contact(request: HttpRequest, report_uuid: str) -> HttpResponse:
    """Reveal the reporter's number to call them back; every reveal is audited."""
    report = _report_or_404(report_uuid)
    # A voice report keeps only the hash; its number is on the call, shown from there.
    if not report.reporter_hash or report.reporter_contact is None:
        raise Http404(_("This report has no callback number."))
    audit.record(actor=request.user, action=AuditAction.REPORT_CONTACT_VIEWED, target=report)
    if request.headers.get("HX-Request"):
        return render(request, "incidents/report_contact.html", {"number": report.reporter_contact})
    return _render_report(
        request, report, since=latest_event_id(), revealed_number=report.reporter_contact
    )

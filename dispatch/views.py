"""Dispatch pages: responders (coordinators), offers from the incident page
(dispatchers), and the responders' own mobile pages behind signed links."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core import audit
from core.models import AuditAction
from dispatch import actions, evidence, links, selectors
from dispatch.forms import (
    EvidenceForm,
    FieldReportForm,
    ImportForm,
    LocationForm,
    NeededForm,
    ResponderForm,
    ShiftForm,
    TrainingForm,
)
from dispatch.models import Evidence, Offer, OfferStatus, Responder, ResponderImport
from incidents.models import Incident

PAGE_SIZE = 50


View = Callable[..., HttpResponse]


def staff(permission: str) -> Callable[[View], View]:
    """Login first (redirect), then the permission (403)."""

    def decorate(view: View) -> View:
        checked: View = login_required(permission_required(permission, raise_exception=True)(view))
        return checked

    return decorate


# Responders (coordinators manage, dispatchers read)


@staff("dispatch.view_responders")
@require_GET
def responder_list(request: HttpRequest) -> HttpResponse:
    rows = selectors.responders(
        role=request.GET.get("role", ""), active=request.GET.get("active", "")
    )
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "dispatch/responders.html", {"page": page, "filters": request.GET})


def _data(form: ResponderForm) -> actions.ResponderData:
    data = form.cleaned_data
    return actions.ResponderData(
        name=data["name"],
        phone=data["phone"],
        roles=data["roles"],
        languages=data["languages"],
        home_neighbourhood=data["home_neighbourhood"],
        notes=data["notes"],
        active=data["active"],
    )


@staff("dispatch.manage_responders")
@require_http_methods(["GET", "POST"])
def responder_new(request: HttpRequest) -> HttpResponse:
    form = ResponderForm(request.POST or None, initial={"active": True, "roles": ["verifier"]})
    if request.method == "POST" and form.is_valid():
        try:
            responder = actions.save_responder(actor=request.user, data=_data(form))
        except actions.ActionRefused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Responder added."))
            return redirect("dispatch:responder", responder_uuid=responder.uuid)
    status = 422 if request.method == "POST" else 200
    return render(request, "dispatch/responder_form.html", {"form": form}, status=status)


@staff("dispatch.view_responders")
@require_http_methods(["GET", "POST"])
def responder_detail(request: HttpRequest, responder_uuid: uuid.UUID) -> HttpResponse:
    responder = get_object_or_404(
        Responder.objects.select_related("home_neighbourhood").prefetch_related(
            "trainings", "shifts"
        ),
        uuid=responder_uuid,
    )
    can_manage = request.user.has_perm("dispatch.manage_responders")
    if request.method == "GET":
        audit.record(actor=request.user, action=AuditAction.RESPONDER_VIEWED, target=responder)
    form = (
        ResponderForm(request.POST)
        if request.method == "POST"
        else ResponderForm.for_responder(responder)
    )
    if request.method == "POST":
        if not can_manage:
            return HttpResponse(status=403)
        if form.is_valid():
            try:
                actions.save_responder(actor=request.user, data=_data(form), responder=responder)
            except actions.ActionRefused as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, _("Saved."))
                return redirect("dispatch:responder", responder_uuid=responder.uuid)
    context = {
        "responder": responder,
        "form": form,
        "can_manage": can_manage,
        "training_form": TrainingForm(),
        "shift_form": ShiftForm(),
    }
    return render(
        request,
        "dispatch/responder_form.html",
        context,
        status=422 if request.method == "POST" else 200,
    )


@staff("dispatch.manage_responders")
@require_POST
def responder_training(request: HttpRequest, responder_uuid: uuid.UUID) -> HttpResponse:
    responder = get_object_or_404(Responder, uuid=responder_uuid)
    form = TrainingForm(request.POST)
    if form.is_valid():
        try:
            actions.add_training(actor=request.user, responder=responder, **form.cleaned_data)
            messages.success(request, _("Training added."))
        except actions.ActionRefused as exc:
            messages.error(request, str(exc))
    else:
        messages.error(request, _("Give the training a name and a completion date."))
    return redirect("dispatch:responder", responder_uuid=responder.uuid)


@staff("dispatch.manage_responders")
@require_POST
def responder_shift(request: HttpRequest, responder_uuid: uuid.UUID) -> HttpResponse:
    responder = get_object_or_404(Responder, uuid=responder_uuid)
    form = ShiftForm(request.POST)
    if form.is_valid():
        try:
            actions.add_shift(actor=request.user, responder=responder, **form.cleaned_data)
            messages.success(request, _("Shift added."))
        except actions.ActionRefused as exc:
            messages.error(request, str(exc))
    else:
        messages.error(request, _("Give the shift a start and an end."))
    return redirect("dispatch:responder", responder_uuid=responder.uuid)


@staff("dispatch.manage_responders")
@require_http_methods(["GET", "POST"])
def responder_import(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        job = actions.start_import(actor=request.user, content=form.cleaned_data["file"])
        return redirect("dispatch:import", job_uuid=job.uuid)
    return render(
        request,
        "dispatch/import.html",
        {"form": form, "job": None},
        status=422 if request.method == "POST" else 200,
    )


@staff("dispatch.manage_responders")
@require_GET
def import_status(request: HttpRequest, job_uuid: uuid.UUID) -> HttpResponse:
    job = get_object_or_404(ResponderImport, uuid=job_uuid)
    template = (
        "dispatch/import.html#progress"
        if request.headers.get("HX-Request")
        else "dispatch/import.html"
    )
    return render(request, template, {"job": job, "form": ImportForm()})


# Offers from the incident page


def _incident(incident_uuid: uuid.UUID) -> Incident:
    return get_object_or_404(Incident.objects.select_related("neighbourhood"), uuid=incident_uuid)


@staff("dispatch.send_offers")
@require_POST
def send_offers(request: HttpRequest, incident_uuid: uuid.UUID) -> HttpResponse:
    incident = _incident(incident_uuid)
    chosen = request.POST.getlist("responder")
    try:
        ids = [uuid.UUID(value) for value in chosen]
    except ValueError:
        ids = []
    responders = list(Responder.objects.filter(uuid__in=ids, active=True))
    if not responders or len(responders) != len(set(ids)):
        messages.error(request, _("Choose responders from the list."))
    else:
        try:
            offers = actions.send_offers(
                actor=request.user, incident=incident, responders=responders
            )
            messages.success(request, _("Offer sent to %(n)d responder(s).") % {"n": len(offers)})
        except actions.ActionRefused as exc:
            messages.error(request, str(exc))
    return redirect("incidents:incident", incident_uuid=incident.uuid)


@staff("dispatch.send_offers")
@require_POST
def verifiers_needed(request: HttpRequest, incident_uuid: uuid.UUID) -> HttpResponse:
    incident = _incident(incident_uuid)
    form = NeededForm(request.POST)
    if form.is_valid():
        try:
            actions.set_verifiers_needed(
                actor=request.user, incident=incident, count=form.cleaned_data["count"]
            )
            messages.success(request, _("Saved."))
        except actions.ActionRefused as exc:
            messages.error(request, str(exc))
    else:
        messages.error(request, _("Between 1 and 10 verifiers."))
    return redirect("incidents:incident", incident_uuid=incident.uuid)


@staff("dispatch.view_evidence")
@require_GET
def evidence_file(request: HttpRequest, evidence_uuid: uuid.UUID, which: str) -> HttpResponse:
    item = get_object_or_404(Evidence, uuid=evidence_uuid)
    if which == "original" and not request.user.has_perm("dispatch.view_original_evidence"):
        return HttpResponse(status=403)
    data = evidence.read(item, which)
    audit.record(actor=request.user, action=AuditAction.EVIDENCE_VIEWED, target=item, which=which)
    if which == "original":
        response = HttpResponse(data, content_type="application/octet-stream")
        response["Content-Disposition"] = f'attachment; filename="{item.uuid}-original"'
    else:
        response = HttpResponse(data, content_type=item.content_type)
        response["Content-Disposition"] = "inline"
    return response


# Responders' own pages, behind signed links


def _link_error(request: HttpRequest, expired: bool) -> HttpResponse:
    response = render(
        request,
        "dispatch/link_error.html",
        {"expired": expired},
        status=410 if expired else 404,
    )
    patch_cache_control(response, no_store=True)
    return response


def _offer_from_token(token: str) -> Offer:
    offer_uuid = links.offer_from(token)
    offer = (
        Offer.objects.select_related("incident", "incident__neighbourhood", "responder")
        .filter(uuid=offer_uuid, responder__active=True)
        .first()
    )
    if offer is None:
        raise links.LinkInvalid
    return offer


@require_http_methods(["GET", "POST"])
def field_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        offer = _offer_from_token(token)
    except links.LinkExpired:
        return _link_error(request, expired=True)
    except links.LinkInvalid:
        return _link_error(request, expired=False)
    form = FieldReportForm()
    if request.method == "POST":
        step = request.POST.get("step")
        try:
            if step in {"accept", "decline"} and offer.status == OfferStatus.OFFERED:
                actions.answer_offer(offer=offer, accept=step == "accept")
                messages.success(
                    request, _("Accepted. Thank you.") if step == "accept" else _("Passed.")
                )
            elif step == "arrived":
                actions.mark_arrived(offer=offer)
                messages.success(request, _("Arrival recorded."))
            elif step == "withdraw":
                actions.withdraw(offer=offer)
                messages.success(request, _("Understood. The dispatcher will send someone else."))
            elif step == "report":
                form = FieldReportForm(request.POST)
                if not form.is_valid():
                    raise actions.ActionRefused(_("Please check the form."))
                data = form.cleaned_data
                actions.save_field_report(
                    offer=offer,
                    data=actions.FieldData(
                        finding=data["finding"] or "",
                        salute={name: data.get(f"salute_{name}") or "" for name in actions.SALUTE},
                        agencies=data["agencies"],
                        officers=data["officers"],
                        vehicles=data["vehicles"],
                        detentions=data["detentions"],
                        notes=data["notes"],
                    ),
                )
                messages.success(request, _("Report saved. You can add more at any time."))
            elif step == "upload":
                sealed, errors = _uploads(request)
                if errors or not sealed:
                    raise actions.ActionRefused(" ".join(errors) or _("Choose a photo or video."))
                actions.save_field_report(offer=offer, data=actions.FieldData(), uploads=sealed)
                messages.success(request, _("%(n)d file(s) saved.") % {"n": len(sealed)})
            else:
                raise actions.ActionRefused(_("That step is not available now."))
        except actions.ActionRefused as exc:
            response = _render_field(request, offer, token, form, error=str(exc), status=422)
            return response
        return redirect("field:offer", token=token)
    return _render_field(request, offer, token, form)


MAX_FILES_PER_REQUEST = 3


def _uploads(request: HttpRequest) -> tuple[list[evidence.SealedEvidence], list[str]]:
    """Check, strip, hash, encrypt and store the uploaded files, before the field report
    is saved (and before its lock is taken)."""
    from django.conf import settings

    files = request.FILES.getlist("uploads")
    errors: list[str] = []
    if len(files) > MAX_FILES_PER_REQUEST:
        errors.append(_("Send at most %(n)d files at a time.") % {"n": MAX_FILES_PER_REQUEST})
        return [], errors
    prepared = []
    for upload in files:
        if upload.size is None or upload.size > settings.RR_MAX_UPLOAD_BYTES:
            errors.append(_("%(name)s is too large.") % {"name": upload.name})
            continue
        try:
            prepared.append(evidence.prepare(upload.name or "", upload.read()))
        except evidence.InvalidEvidence as exc:
            errors.append(str(exc))
    if errors:
        return [], errors
    return [evidence.seal(item) for item in prepared], errors


def _render_field(
    request: HttpRequest,
    offer: Offer,
    token: str,
    form: FieldReportForm,
    *,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    report = getattr(offer, "field_report", None)
    context = {
        "offer": offer,
        "incident": offer.incident,
        "token": token,
        "form": form,
        "error": error,
        "report": report,
        "evidence": list(report.evidence.order_by("uploaded_at")) if report else [],
        "evidence_form": EvidenceForm(),
    }
    response = render(request, "dispatch/field.html", context, status=status)
    patch_cache_control(response, no_store=True)
    return response


@require_http_methods(["GET", "POST"])
def responder_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        responder_uuid = links.responder_from(token)
    except links.LinkExpired:
        return _link_error(request, expired=True)
    except links.LinkInvalid:
        return _link_error(request, expired=False)
    responder = Responder.objects.filter(uuid=responder_uuid, active=True).first()
    if responder is None:
        return _link_error(request, expired=False)
    error = ""
    if request.method == "POST":
        step = request.POST.get("step")
        try:
            if step in {"on", "off"}:
                actions.set_availability(responder=responder, available=step == "on")
            elif step == "location":
                location = LocationForm(request.POST)
                if not location.is_valid():
                    raise actions.ActionRefused(_("Your location could not be read."))
                actions.share_location(responder=responder, point=location.cleaned_data["point"])
            else:
                raise Http404
            return redirect("field:me", token=token)
        except actions.ActionRefused as exc:
            error = str(exc)
        responder.refresh_from_db()
    open_offers = list(
        Offer.objects.filter(
            responder=responder, status__in=[OfferStatus.OFFERED, OfferStatus.ACCEPTED]
        )
        .select_related("incident", "incident__neighbourhood")
        .order_by("-offered_at")
    )
    response = render(
        request,
        "dispatch/me.html",
        {
            "responder": responder,
            "offers": [(o, links.offer_path(o)) for o in open_offers],
            "error": error,
        },
        status=422 if error else 200,
    )
    patch_cache_control(response, no_store=True)
    return response

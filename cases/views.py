"""Family-support case pages. Thin: forms in, ``actions`` to change, ``selectors`` to
read. Order of checks, as everywhere: login (redirect), role (403), method (405), then
the object (404, also for a case the person may not read)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import reauth
from cases import actions, exports, selectors
from cases.forms import (
    ContactForm,
    ExportForm,
    FacilityForm,
    FundForm,
    HandlingForm,
    NoteForm,
    OpenCaseForm,
    OrganisationForm,
    PersonForm,
    ReferralForm,
    ReferralStatusForm,
    TaskForm,
    TransferForm,
)
from cases.models import (
    AccessAction,
    Case,
    CaseStatus,
    Facility,
    FamilyContact,
    Fund,
    FundKind,
    LegalStage,
    PartnerOrganisation,
    Referral,
    ReferralStatus,
    Task,
)
from incidents.models import Incident

PAGE_SIZE = 25
# R14: an export needs password and second factor proved this recently.
EXPORT_REAUTH_SECONDS = 300
View = Callable[..., HttpResponse]


def staff(permission: str) -> Callable[[View], View]:
    """Login first (redirect), then the permission (403)."""

    def decorate(view: View) -> View:
        checked: View = login_required(permission_required(permission, raise_exception=True)(view))
        return checked

    return decorate


cases_view = staff("cases.use_cases")
coordinator_view = staff("cases.manage_directories")


def _child(model: type[Model], case: Case, key: str) -> Any:
    """A row of ``model`` that belongs to ``case``; 404 otherwise."""
    try:
        value = uuid.UUID(str(key))
    except ValueError:
        raise Http404 from None
    return get_object_or_404(model, uuid=value, case=case)


def _editable(request: HttpRequest, case_uuid: uuid.UUID) -> Case:
    case = selectors.get_case(request.user, case_uuid)
    if case.shredded:
        raise Http404
    return case


def _to_case(case: Case, anchor: str = "") -> HttpResponse:
    url = reverse("cases:detail", args=[case.uuid])
    return redirect(f"{url}#{anchor}" if anchor else url)


# --- the list ---------------------------------------------------------------------------


@cases_view
@require_GET
def case_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    mine = request.GET.get("mine") == "1"
    overdue = request.GET.get("overdue") == "1"
    cases = selectors.case_list(request.user, status=status, mine=mine, overdue=overdue)  # type: ignore[arg-type]
    page = Paginator(cases, PAGE_SIZE).get_page(request.GET.get("page"))
    # The list shows names: each case on this page is a read, recorded in one insert.
    actions.record_list_access(actor=request.user, cases=list(page.object_list))
    query = urlencode(
        {
            k: v
            for k, v in {
                "status": status,
                "mine": "1" if mine else "",
                "overdue": "1" if overdue else "",
            }.items()
            if v
        }
    )
    return render(
        request,
        "cases/case_list.html",
        {
            "page": page,
            "status": status,
            "mine": mine,
            "overdue": overdue,
            "statuses": CaseStatus.choices,
            "query": query,
        },
    )


# --- opening a case -------------------------------------------------------------------------


@cases_view
@require_GET
def choose_incident(request: HttpRequest) -> HttpResponse:
    incidents = selectors.verified_incidents()
    page = Paginator(incidents, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "cases/choose_incident.html", {"page": page})


def _person(form: PersonForm) -> actions.PersonData:
    data = form.cleaned_data
    return actions.PersonData(
        person_name=data["person_name"],
        person_birth_date=data["person_birth_date"],
        a_number=data["a_number"],
        detained_at=data["detained_at"],
        detained_place=data["detained_place"],
    )


@cases_view
@require_http_methods(["GET", "POST"])
def open_case(request: HttpRequest, incident_uuid: uuid.UUID) -> HttpResponse:
    incident = get_object_or_404(Incident, uuid=incident_uuid)
    if not actions.was_verified(incident):
        raise Http404
    form = OpenCaseForm(
        request.POST or None,
        initial={"detained_at": incident.first_seen, "detained_place": incident.location_text},
    )
    if not request.user.has_perm("cases.assign_anyone"):
        form.fields["assigned_to"].disabled = True
        form.initial["assigned_to"] = request.user
    status = 200
    if request.method == "POST":
        if form.is_valid():
            assignee = form.cleaned_data["assigned_to"]
            if not request.user.has_perm("cases.assign_anyone"):
                assignee = request.user
            try:
                case = actions.open_case(
                    actor=request.user,  # type: ignore[arg-type]
                    incident=incident,
                    person=_person(form),
                    facility=form.cleaned_data["facility"],
                    assigned_to=assignee,
                )
            except actions.CaseRefused as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, _("Case opened."))
                return _to_case(case)
        status = 422
    return render(
        request, "cases/case_open.html", {"form": form, "incident": incident}, status=status
    )


# --- the case page ----------------------------------------------------------------------------


@cases_view
@require_GET
def case_detail(request: HttpRequest, case_uuid: uuid.UUID) -> HttpResponse:
    case = selectors.get_case(request.user, case_uuid)
    actions.record_access(actor=request.user, case=case, action=AccessAction.VIEWED)
    context: dict[str, Any] = {"case": case, "can_edit": not case.shredded}
    if not case.shredded:
        context.update(selectors.case_detail(case))
        context.update(
            transfer_form=TransferForm(),
            contact_form=ContactForm(),
            referral_form=ReferralForm(),
            referral_status_choices=ReferralStatus.choices,
            note_form=NoteForm(),
            task_form=TaskForm(),
            overdue=case.consultation_overdue(),
            access=selectors.access_events(case),
        )
    return render(request, "cases/case_detail.html", context)


def _form_page(
    request: HttpRequest, case: Case, form: Any, title: str, status: int = 200
) -> HttpResponse:
    return render(
        request, "cases/case_form.html", {"case": case, "form": form, "title": title}, status=status
    )


@cases_view
@require_http_methods(["GET", "POST"])
def edit_person(request: HttpRequest, case_uuid: uuid.UUID) -> HttpResponse:
    case = _editable(request, case_uuid)
    if request.method == "POST":
        form = PersonForm(request.POST)
        if form.is_valid():
            try:
                actions.update_person(actor=request.user, case=case, person=_person(form))  # type: ignore[arg-type]
            except actions.CaseRefused as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, _("Saved."))
                return _to_case(case, "person")
        return _form_page(request, case, form, _("The detained person"), status=422)
    actions.record_access(actor=request.user, case=case, action=AccessAction.VIEWED, what="person")
    form = PersonForm(
        initial={
            "person_name": case.person_name,
            "person_birth_date": case.person_birth_date or None,
            "a_number": case.a_number,
            "detained_at": case.detained_at,
            "detained_place": case.detained_place,
        }
    )
    return _form_page(request, case, form, _("The detained person"))


@cases_view
@require_http_methods(["GET", "POST"])
def edit_handling(request: HttpRequest, case_uuid: uuid.UUID) -> HttpResponse:
    case = _editable(request, case_uuid)
    form = HandlingForm(
        request.POST or None,
        initial={
            "legal_stage": case.legal_stage,
            "consulted_at": case.consulted_at,
            "assigned_to": case.assigned_to,
            "status": case.status,
        },
    )
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                actions.update_handling(
                    actor=request.user,  # type: ignore[arg-type]
                    case=case,
                    legal_stage=LegalStage(data["legal_stage"]),
                    status=CaseStatus(data["status"]),
                    assigned_to=data["assigned_to"],
                    consulted_at=data["consulted_at"],
                )
            except actions.CaseRefused as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, _("Saved."))
                # Giving a case to a colleague means this person may no longer read it.
                if selectors.visible_cases(request.user).filter(pk=case.pk).exists():
                    return _to_case(case, "handling")
                return redirect("cases:list")
        return _form_page(request, case, form, _("Handling"), status=422)
    return _form_page(request, case, form, _("Handling"))


def _refused_or_back(
    request: HttpRequest, case: Case, anchor: str, call: Callable[[], object], done: str
) -> HttpResponse:
    try:
        call()
    except actions.CaseRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done)
    return _to_case(case, anchor)


def _form_then_back(
    request: HttpRequest,
    case: Case,
    anchor: str,
    form: Any,
    *,
    act: Callable[[dict[str, Any]], object],
    done: str,
) -> HttpResponse:
    """The small forms on the case page: errors shown as messages, or ``act`` with the
    cleaned data; either way back to the case at ``anchor``."""
    if not form.is_valid():
        _errors(request, form)
        return _to_case(case, anchor)
    return _refused_or_back(request, case, anchor, lambda: act(form.cleaned_data), done)


def _errors(request: HttpRequest, form: Any) -> None:
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else str(error))


@cases_view
@require_POST
def add_transfer(request: HttpRequest, case_uuid: uuid.UUID) -> HttpResponse:
    case = _editable(request, case_uuid)
    return _form_then_back(
        request,
        case,
        "location",
        TransferForm(request.POST),
        act=lambda data: actions.record_transfer(
            actor=request.user,  # type: ignore[arg-type]
            case=case,
            facility=data["facility"],
            moved_at=data["moved_at"],
        ),
        done=_("Transfer recorded."),
    )


def _contact_data(form: ContactForm) -> actions.ContactData:
    data = form.cleaned_data
    return actions.ContactData(
        name=data["name"],
        relation=data["relation"],
        phone=data["phone"],
        language=data["language"],
        sms_consent=data["sms_consent"],
    )


@cases_view
@require_http_methods(["GET", "POST"])
def contact_form(
    request: HttpRequest, case_uuid: uuid.UUID, contact_uuid: uuid.UUID | None = None
) -> HttpResponse:
    case = _editable(request, case_uuid)
    contact: FamilyContact | None = (
        _child(FamilyContact, case, str(contact_uuid)) if contact_uuid else None
    )
    title = _("Family contact")
    if request.method == "POST":
        form = ContactForm(request.POST)
        if form.is_valid():
            actions.save_contact(
                actor=request.user,  # type: ignore[arg-type]
                case=case,
                data=_contact_data(form),
                contact=contact,
            )
            messages.success(request, _("Saved."))
            return _to_case(case, "contacts")
        return _form_page(request, case, form, title, status=422)
    initial: dict[str, Any] = {"language": "en"}
    if contact is not None:
        actions.record_access(
            actor=request.user, case=case, action=AccessAction.VIEWED, what="contact"
        )
        initial = {
            "name": contact.name,
            "relation": contact.relation,
            "phone": contact.phone,
            "language": contact.language,
            "sms_consent": contact.sms_consent,
        }
    return _form_page(request, case, ContactForm(initial=initial), title)


@cases_view
@require_POST
def remove_contact(
    request: HttpRequest, case_uuid: uuid.UUID, contact_uuid: uuid.UUID
) -> HttpResponse:
    case = _editable(request, case_uuid)
    contact = _child(FamilyContact, case, str(contact_uuid))
    return _refused_or_back(
        request,
        case,
        "contacts",
        lambda: actions.remove_contact(actor=request.user, case=case, contact=contact),  # type: ignore[arg-type]
        _("Contact removed."),
    )


@cases_view
@require_POST
def add_referral(request: HttpRequest, case_uuid: uuid.UUID) -> HttpResponse:
    case = _editable(request, case_uuid)
    return _form_then_back(
        request,
        case,
        "referrals",
        ReferralForm(request.POST),
        act=lambda data: actions.refer(
            actor=request.user,  # type: ignore[arg-type]
            case=case,
            organisation=data["organisation"],
            notes=data["notes"],
        ),
        done=_("Referral recorded."),
    )


@cases_view
@require_POST
def referral_status(
    request: HttpRequest, case_uuid: uuid.UUID, referral_uuid: uuid.UUID
) -> HttpResponse:
    case = _editable(request, case_uuid)
    referral = _child(Referral, case, str(referral_uuid))
    return _form_then_back(
        request,
        case,
        "referrals",
        ReferralStatusForm(request.POST),
        act=lambda data: actions.update_referral(
            actor=request.user,  # type: ignore[arg-type]
            case=case,
            referral=referral,
            status=ReferralStatus(data["status"]),
        ),
        done=_("Referral updated."),
    )


@cases_view
@require_http_methods(["GET", "POST"])
def fund_form(
    request: HttpRequest, case_uuid: uuid.UUID, fund_uuid: uuid.UUID | None = None
) -> HttpResponse:
    case = _editable(request, case_uuid)
    fund: Fund | None = _child(Fund, case, str(fund_uuid)) if fund_uuid else None
    title = _("Bond and mutual aid")
    if request.method == "POST":
        form = FundForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            actions.save_fund(
                actor=request.user,  # type: ignore[arg-type]
                case=case,
                fund=fund,
                data=actions.FundData(
                    kind=FundKind(data["kind"]),
                    purpose=data["purpose"],
                    requested=data["requested"],
                    raised=data["raised"],
                    paid=data["paid"],
                ),
            )
            messages.success(request, _("Saved."))
            return _to_case(case, "funds")
        return _form_page(request, case, form, title, status=422)
    initial: dict[str, Any] = {}
    if fund is not None:
        actions.record_access(
            actor=request.user, case=case, action=AccessAction.VIEWED, what="fund"
        )
        initial = {
            "kind": fund.kind,
            "purpose": fund.purpose,
            "requested": fund.requested,
            "raised": fund.raised,
            "paid": fund.paid,
        }
    return _form_page(request, case, FundForm(initial=initial), title)


@cases_view
@require_POST
def add_note(request: HttpRequest, case_uuid: uuid.UUID) -> HttpResponse:
    case = _editable(request, case_uuid)
    return _form_then_back(
        request,
        case,
        "notes",
        NoteForm(request.POST),
        act=lambda data: actions.add_note(actor=request.user, case=case, body=data["body"]),  # type: ignore[arg-type]
        done=_("Note added."),
    )


@cases_view
@require_POST
def add_task(request: HttpRequest, case_uuid: uuid.UUID) -> HttpResponse:
    case = _editable(request, case_uuid)
    return _form_then_back(
        request,
        case,
        "tasks",
        TaskForm(request.POST),
        act=lambda data: actions.add_task(
            actor=request.user,  # type: ignore[arg-type]
            case=case,
            title=data["title"],
            assignee=data["assignee"],
            due_on=data["due_on"],
        ),
        done=_("Task added."),
    )


@cases_view
@require_POST
def task_done(request: HttpRequest, case_uuid: uuid.UUID, task_uuid: uuid.UUID) -> HttpResponse:
    case = _editable(request, case_uuid)
    task = _child(Task, case, str(task_uuid))
    done = request.POST.get("done") == "1"
    return _refused_or_back(
        request,
        case,
        "tasks",
        lambda: actions.set_task_done(actor=request.user, case=case, task=task, done=done),  # type: ignore[arg-type]
        _("Task updated."),
    )


# --- export (re-authentication first: R14) -------------------------------------------------


@cases_view
@require_http_methods(["GET", "POST"])
def export_case(request: HttpRequest, case_uuid: uuid.UUID) -> HttpResponse:
    # The case first (a case someone may not read is a 404, like everywhere), then the
    # step-up: password and second factor within five minutes (accounts.reauth).
    case = _editable(request, case_uuid)
    if not reauth.is_recent(request, seconds=EXPORT_REAUTH_SECONDS):
        target = reverse("cases:export", args=[case.uuid])
        return redirect(f"{reverse('accounts:reauth')}?{urlencode({REDIRECT_FIELD_NAME: target})}")
    form = ExportForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            kind = form.cleaned_data["format"]
            actions.record_access(
                actor=request.user,
                case=case,
                action=AccessAction.EXPORTED,
                what=f"export:{kind}",
                reason=form.cleaned_data["reason"],
            )
            document = exports.case_document(case)
            if kind == "csv":
                return exports.csv_response(case, document)
            return exports.pdf_response(case, document)
        return render(request, "cases/export.html", {"case": case, "form": form}, status=422)
    return render(request, "cases/export.html", {"case": case, "form": form})


# --- directories ---------------------------------------------------------------------------------


@cases_view
@require_GET
def facilities(request: HttpRequest) -> HttpResponse:
    page = Paginator(Facility.objects.order_by("-active", "name"), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "cases/facilities.html", {"page": page})


@coordinator_view
@require_http_methods(["GET", "POST"])
def facility_form(request: HttpRequest, facility_uuid: uuid.UUID | None = None) -> HttpResponse:
    facility = get_object_or_404(Facility, uuid=facility_uuid) if facility_uuid else Facility()
    form = FacilityForm(request.POST or None, instance=facility)
    if request.method == "POST":
        if form.is_valid():
            actions.save_facility(actor=request.user, facility=form.save(commit=False))  # type: ignore[arg-type]
            messages.success(request, _("Saved."))
            return redirect("cases:facilities")
        status = 422
    else:
        status = 200
    return render(
        request,
        "cases/directory_form.html",
        {"form": form, "title": _("Detention facility"), "back": reverse("cases:facilities")},
        status=status,
    )


@cases_view
@require_GET
def partners(request: HttpRequest) -> HttpResponse:
    page = Paginator(PartnerOrganisation.objects.order_by("-active", "name"), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "cases/partners.html", {"page": page})


@coordinator_view
@require_http_methods(["GET", "POST"])
def partner_form(request: HttpRequest, partner_uuid: uuid.UUID | None = None) -> HttpResponse:
    organisation = (
        get_object_or_404(PartnerOrganisation, uuid=partner_uuid)
        if partner_uuid
        else PartnerOrganisation()
    )
    form = OrganisationForm(request.POST or None, instance=organisation)
    if request.method == "POST":
        if form.is_valid():
            actions.save_organisation(actor=request.user, organisation=form.save(commit=False))  # type: ignore[arg-type]
            messages.success(request, _("Saved."))
            return redirect("cases:partners")
        status = 422
    else:
        status = 200
    return render(
        request,
        "cases/directory_form.html",
        {"form": form, "title": _("Partner organisation"), "back": reverse("cases:partners")},
        status=status,
    )

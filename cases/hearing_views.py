"""Hearing pages: add, change and cancel a case's dates, the calendar across cases, and
the volunteers' own sign-up page behind a signed link."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from itertools import groupby
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_http_methods

from cases import hearings
from cases.actions import record_access
from cases.hearing_forms import CalendarForm, HearingForm
from cases.models import AccessAction, Accompaniment, Case, Hearing
from cases.reminders import network_zone

View = Callable[..., HttpResponse]


def case_team(methods: list[str]) -> Callable[[View], View]:
    """Signed in, then family support or a coordinator (403), then the method (405);
    the object's own check (404) is in the view."""

    def decorate(view: View) -> View:
        return login_required(
            permission_required("cases.use_cases", raise_exception=True)(
                require_http_methods(methods)(cache_control(private=True, no_store=True)(view))
            )
        )

    return decorate


def case_url(case: Case) -> str:
    return reverse("cases:detail", args=[case.uuid])


def _case(request: HttpRequest, case_uuid: uuid.UUID) -> Case:
    case = hearings.case_for(request.user, case_uuid)
    if case is None:
        raise Http404
    return case


def _hearing(request: HttpRequest, hearing_uuid: uuid.UUID) -> Hearing:
    hearing = hearings.hearing_for(request.user, hearing_uuid)
    if hearing is None:
        raise Http404
    return hearing


@case_team(["GET", "POST"])
def hearing_new(request: HttpRequest, case_uuid: uuid.UUID) -> HttpResponse:
    case = _case(request, case_uuid)
    first_language = case.contacts.values_list("language", flat=True).first()
    form = HearingForm(
        request.POST or None,
        initial={"accompaniment_wanted": True, "language_needed": first_language or ""},
    )
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            hearings.add_hearing(actor=request.user, case=case, data=form.to_data())  # type: ignore[arg-type]
        except hearings.HearingRefused as exc:
            error = str(exc)
        else:
            messages.success(request, _("Date added. Reminders are scheduled."))
            return redirect(case_url(case) + "#hearings")
    status = 422 if request.method == "POST" else 200
    return render(
        request,
        "cases/hearing_form.html",
        {"case": case, "form": form, "error": error, "hearing": None, "back": case_url(case)},
        status=status,
    )


@case_team(["GET", "POST"])
def hearing_edit(request: HttpRequest, hearing_uuid: uuid.UUID) -> HttpResponse:
    hearing = _hearing(request, hearing_uuid)
    case = hearing.case
    form = HearingForm(request.POST or None, hearing=hearing)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            hearings.change_hearing(actor=request.user, hearing=hearing, data=form.to_data())  # type: ignore[arg-type]
        except hearings.HearingRefused as exc:
            error = str(exc)
        else:
            messages.success(request, _("Date saved. Reminders follow the new details."))
            return redirect(case_url(case) + "#hearings")
    elif request.method == "GET":
        # The form shows the notes: a read of the case.
        record_access(actor=request.user, case=case, action=AccessAction.VIEWED, what="hearing")
    status = 422 if request.method == "POST" else 200
    return render(
        request,
        "cases/hearing_form.html",
        {"case": case, "form": form, "error": error, "hearing": hearing, "back": case_url(case)},
        status=status,
    )


@case_team(["POST"])
def hearing_cancel(request: HttpRequest, hearing_uuid: uuid.UUID) -> HttpResponse:
    hearing = _hearing(request, hearing_uuid)
    try:
        hearings.cancel_hearing(actor=request.user, hearing=hearing)  # type: ignore[arg-type]
    except hearings.HearingRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Date cancelled. No more reminders will go out for it."))
    return redirect(case_url(hearing.case) + "#hearings")


@case_team(["POST"])
def hearing_invite(request: HttpRequest, hearing_uuid: uuid.UUID) -> HttpResponse:
    hearing = _hearing(request, hearing_uuid)
    try:
        count = hearings.invite_volunteers(actor=request.user, hearing=hearing)  # type: ignore[arg-type]
    except hearings.HearingRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("%(n)d volunteer(s) asked by SMS.") % {"n": count})
    return redirect(case_url(hearing.case) + "#hearings")


@case_team(["POST"])
def accompaniment_cancel(request: HttpRequest, accompaniment_uuid: uuid.UUID) -> HttpResponse:
    accompaniment = (
        Accompaniment.objects.select_related("hearing", "hearing__case")
        .filter(uuid=accompaniment_uuid)
        .first()
    )
    if accompaniment is None or not request.user.has_perm(
        "cases.view_case", accompaniment.hearing.case
    ):
        raise Http404
    if hearings.cancel_sign_up(actor=request.user, accompaniment=accompaniment):  # type: ignore[arg-type]
        messages.success(request, _("Sign-up cancelled."))
    else:
        messages.info(request, _("That sign-up was already cancelled."))
    return redirect(case_url(accompaniment.hearing.case) + "#hearings")


@case_team(["GET"])
def hearing_calendar(request: HttpRequest) -> HttpResponse:
    form = CalendarForm(request.GET)
    valid = form.is_valid()
    today = timezone.localdate(timezone=network_zone())
    start: date = (form.cleaned_data.get("start") if valid else None) or today
    span_name = (form.cleaned_data.get("span") if valid else "") or "week"
    span = hearings.calendar_range(start, span_name)
    include_cancelled = bool(valid and form.cleaned_data.get("cancelled"))
    rows = hearings.calendar(request.user, span, include_cancelled=include_cancelled)
    zone = network_zone()
    days = [
        (day, list(group))
        for day, group in groupby(
            rows, key=lambda row: row.hearing.starts_at.astimezone(zone).date()
        )
    ]
    context = {
        "form": form,
        "span": span,
        "days": days,
        "count": len(rows),
        "limit": hearings.CALENDAR_LIMIT,
        "today": today,
        "cancelled": include_cancelled,
    }
    return render(request, "cases/hearing_calendar.html", context, status=200 if valid else 422)


# The volunteers' page (no account: a signed link from their SMS)


def _link_error(request: HttpRequest, *, expired: bool) -> HttpResponse:
    response = render(
        request,
        "dispatch/link_error.html",
        {"expired": expired},
        status=410 if expired else 404,
    )
    patch_cache_control(response, no_store=True)
    return response


@require_http_methods(["GET", "POST"])
def volunteer_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        responder = hearings.volunteer_from(token)
    except hearings.LinkExpired:
        return _link_error(request, expired=True)
    except hearings.LinkInvalid:
        return _link_error(request, expired=False)
    error = ""
    eligible = hearings.is_eligible(responder)
    if request.method == "POST":
        step = request.POST.get("step", "")
        try:
            hearing_uuid = uuid.UUID(request.POST.get("hearing", ""))
        except ValueError:
            hearing_uuid = None
        try:
            if hearing_uuid is None or step not in {"sign_up", "cancel"}:
                raise hearings.HearingRefused(_("That choice is not available now."))
            if step == "sign_up":
                hearing = hearings.open_hearing_by_uuid(hearing_uuid)
                if hearing is None:
                    raise hearings.HearingRefused(_("This date is no longer open for sign-up."))
                hearings.sign_up(responder=responder, hearing=hearing)
                messages.success(request, _("You are signed up. Thank you. We will remind you."))
            else:
                mine = hearings.own_accompaniment(responder, hearing_uuid)
                if mine is None:
                    raise hearings.HearingRefused(_("You are not signed up for that date."))
                hearings.cancel_sign_up(actor=None, accompaniment=mine)
                messages.success(request, _("Cancelled. Thank you for letting us know."))
            return redirect("cases:volunteer", token=token)
        except hearings.HearingRefused as exc:
            error = str(exc)
    own, others = hearings.volunteer_view(responder) if eligible else ([], [])
    context: dict[str, Any] = {
        "responder": responder,
        "eligible": eligible,
        "own": own,
        "others": others,
        "error": error,
    }
    response = render(
        request, "cases/hearing_volunteer.html", context, status=422 if error else 200
    )
    patch_cache_control(response, no_store=True)
    return response

"""Alert pages: compose and approve (dispatchers), templates and the kill switch
(coordinators), and the public sign-up with its SMS code."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from alerts import actions, subscriptions
from alerts.forms import (
    MAX_BODY_CHARS,
    ComposeForm,
    ConfirmForm,
    JoinForm,
    TemplateForm,
    language_choices,
)
from alerts.models import Alert, AlertKind, AlertStatus, AlertTemplate
from core import phones, ratelimit
from core.client import client_key
from core.crypto import keyed_hash
from core.sms import segments
from dispatch.views import staff
from incidents.models import Incident, IncidentStatus
from messaging.selectors import is_opted_out

PAGE_SIZE = 50
SIGNUPS = ratelimit.Window("alert-signup", 3600)
CODES_PER_NUMBER = ratelimit.Window("alert-code", 3600)
CODES_PER_NUMBER_LIMIT = 3


def _incident(incident_uuid: uuid.UUID) -> Incident:
    return get_object_or_404(Incident.objects.select_related("neighbourhood"), uuid=incident_uuid)


def _kind_for(incident: Incident) -> AlertKind | None:
    if incident.status == IncidentStatus.VERIFIED:
        return AlertKind.ALERT
    if incident.status == IncidentStatus.FALSE:
        return AlertKind.RUMOUR
    return None


# Staff: the list and the kill switch


@staff("alerts.compose")
@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    rows = Alert.objects.select_related(
        "incident", "incident__neighbourhood", "composed_by", "approved_by"
    )
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "alerts/list.html",
        {"page": page, "sending_enabled": actions.sending_enabled()},
    )


@staff("alerts.kill_switch")
@require_POST
def control(request: HttpRequest) -> HttpResponse:
    enabled = request.POST.get("sending") == "on"
    actions.set_sending_enabled(actor=request.user, enabled=enabled)
    if enabled:
        messages.success(
            request, _("Alert sending is on. Paused alerts stay paused until someone resumes them.")
        )
    else:
        messages.warning(request, _("Alert sending is off. Every alert in progress is paused."))
    return redirect("alerts:list")


# Staff: compose, then a second dispatcher approves


@staff("alerts.compose")
@require_http_methods(["GET", "POST"])
def compose(request: HttpRequest, incident_uuid: uuid.UUID) -> HttpResponse:
    incident = _incident(incident_uuid)
    kind = _kind_for(incident)
    if kind is None:
        messages.error(request, _("Only a verified incident can produce an alert."))
        return redirect("incidents:incident", incident_uuid=incident.uuid)
    if request.method == "POST":
        form = ComposeForm(request.POST)
    else:
        initial: dict[str, Any] = {"radius_m": 2000}
        for code, text in actions.suggested_bodies(incident, kind).items():
            initial[f"body_{code}"] = text
        form = ComposeForm(initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            alert = actions.compose(
                actor=request.user,
                incident=incident,
                kind=kind,
                radius_m=form.cleaned_data["radius_m"],
                bodies=form.bodies(),
            )
        except actions.AlertRefused as exc:
            form.add_error(None, str(exc))
        else:
            if alert.status == AlertStatus.AWAITING_APPROVAL:
                messages.success(
                    request, _("Saved. A second dispatcher must approve it before it is sent.")
                )
            else:
                messages.success(request, _("Approved and sending."))
            return redirect("alerts:detail", alert_uuid=alert.uuid)
    radius = form.cleaned_data.get("radius_m", 2000) if form.is_bound and form.is_valid() else 2000
    body_info = [(field, segments(str(field.value() or ""))) for field in form.body_fields()]
    audience = actions.audience_count(incident, radius)
    context = {
        "incident": incident,
        "kind": kind,
        "form": form,
        "audience": audience,
        "drain": actions.drain_estimate(
            audience, max((info.segments for _field, info in body_info), default=1)
        ),
        "body_info": body_info,
        "placeholders": actions.PLACEHOLDERS,
        "second_approval": settings.RR_ALERT_SECOND_APPROVAL,
    }
    return render(
        request, "alerts/compose.html", context, status=422 if request.method == "POST" else 200
    )


@staff("alerts.compose")
@require_http_methods(["GET", "POST"])
def audience_preview(request: HttpRequest, incident_uuid: uuid.UUID) -> HttpResponse:
    """The audience and the sending estimate for the radius (GET), or for the radius and
    the texts being written (POST from the compose page: texts stay out of URLs)."""
    incident = _incident(incident_uuid)
    data = request.POST if request.method == "POST" else request.GET
    form = ComposeForm(data)
    form.is_valid()
    radius = form.cleaned_data.get("radius_m")
    if radius is None:
        return HttpResponse(_("Choose a radius from the list."), status=422)
    count = actions.audience_count(incident, radius)
    # The texts come along (hx-include) so the estimate counts their segments.
    most = max(
        (
            segments(str(data.get(f"body_{code}", ""))[:MAX_BODY_CHARS]).segments
            for code in settings.RR_LANGUAGES
        ),
        default=1,
    )
    return render(
        request,
        "alerts/compose.html#audience",
        {"audience": count, "drain": actions.drain_estimate(count, most)},
    )


def _alert(alert_uuid: uuid.UUID) -> Alert:
    return get_object_or_404(
        Alert.objects.select_related(
            "incident", "incident__neighbourhood", "composed_by", "approved_by"
        ),
        uuid=alert_uuid,
    )


@staff("alerts.compose")
@require_GET
def detail(request: HttpRequest, alert_uuid: uuid.UUID) -> HttpResponse:
    alert = _alert(alert_uuid)
    most = max((segments(text).segments for text in alert.bodies.values()), default=1)
    context = {
        "alert": alert,
        "progress": actions.progress(alert),
        "drain": actions.drain_estimate(alert.audience or 0, most),
        "bodies": [
            (code, name, alert.bodies.get(code, ""), segments(alert.bodies.get(code, "")))
            for code, name in language_choices()
        ],
        "can_approve": (
            alert.status == AlertStatus.AWAITING_APPROVAL
            and request.user.has_perm("alerts.approve")
            and (request.user.pk != alert.composed_by_id or not settings.RR_ALERT_SECOND_APPROVAL)
        ),
        "sending_enabled": actions.sending_enabled(),
    }
    if request.headers.get("HX-Request"):
        return render(request, "alerts/detail.html#progress", context)
    return render(request, "alerts/detail.html", context)


ALERT_ACTIONS = {
    "approve": (actions.approve, "alerts.approve"),
    "pause": (actions.pause, "alerts.compose"),
    "resume": (actions.resume, "alerts.compose"),
    "cancel": (actions.cancel, "alerts.compose"),
}
DONE_MESSAGES = {
    "approve": gettext_lazy("Approved. Sending has started, nearest subscribers first."),
    "pause": gettext_lazy("Paused. Messages not yet sent are held."),
    "resume": gettext_lazy("Resumed."),
    "cancel": gettext_lazy("Cancelled. Messages not yet sent will not go out."),
}


@staff("alerts.compose")
@require_POST
def change(request: HttpRequest, alert_uuid: uuid.UUID, verb: str) -> HttpResponse:
    if verb not in ALERT_ACTIONS:
        return HttpResponse(status=404)
    action, permission = ALERT_ACTIONS[verb]
    if not request.user.has_perm(permission):
        return HttpResponse(status=403)
    alert = _alert(alert_uuid)
    try:
        action(actor=request.user, alert=alert)
    except actions.AlertRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, str(DONE_MESSAGES[verb]))
    return redirect("alerts:detail", alert_uuid=alert.uuid)


# Coordinators: templates


@staff("alerts.manage_templates")
@require_http_methods(["GET", "POST"])
def templates(request: HttpRequest) -> HttpResponse:
    saved = {(t.kind, t.language): t for t in AlertTemplate.objects.select_related("updated_by")}
    status = 200
    errors: dict[str, str] = {}
    if request.method == "POST":
        kind, language = request.POST.get("kind", ""), request.POST.get("language", "")
        form = TemplateForm(request.POST)
        if kind not in AlertKind.values:
            return HttpResponse(_("Unknown template."), status=422)
        if form.is_valid():
            try:
                actions.save_template(
                    actor=request.user,
                    kind=AlertKind(kind),
                    language=language,
                    body=form.cleaned_data["body"],
                )
            except actions.AlertRefused as exc:
                errors[f"{kind}-{language}"] = str(exc)
            else:
                messages.success(request, _("Template saved."))
                return redirect("alerts:templates")
        else:
            errors[f"{kind}-{language}"] = " ".join(
                str(e) for e in form.errors.get("body", [])
            ) or _("Check the text.")
        status = 422
    rows = []
    for kind in AlertKind:
        for code, name in language_choices():
            template = saved.get((kind.value, code))
            key = f"{kind.value}-{code}"
            body = (
                request.POST.get("body", "") if key in errors else actions.template_for(kind, code)
            )
            rows.append(
                {
                    "key": key,
                    "kind": kind,
                    "language": code,
                    "language_name": name,
                    "body": body,
                    "segments": segments(body),
                    "template": template,
                    "error": errors.get(key, ""),
                }
            )
    return render(
        request,
        "alerts/templates.html",
        {"rows": rows, "placeholders": actions.PLACEHOLDERS},
        status=status,
    )


# Public sign-up


def _public(
    request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    response = render(
        request, template, {"page_language": request.LANGUAGE_CODE, **context}, status=status
    )
    patch_cache_control(response, private=True, no_store=True)
    return response


def _rate_limited(request: HttpRequest) -> HttpResponse:
    response = render(request, "intake/rate_limited.html", status=429)
    response["Retry-After"] = str(SIGNUPS.seconds)
    return response


@require_http_methods(["GET", "POST"])
def join(request: HttpRequest) -> HttpResponse:
    area_url = reverse("intake:area")
    if request.method == "GET":
        form = JoinForm(initial={"language": request.LANGUAGE_CODE, "radius_m": 1000})
        return _public(request, "alerts/join.html", {"form": form, "area_url": area_url})
    if not ratelimit.hit(
        client_key(request, window=SIGNUPS.current()),
        limit=settings.RR_SUBSCRIBE_PER_HOUR,
        window=SIGNUPS,
    ):
        return _rate_limited(request)
    form = JoinForm(request.POST)
    sent = _send_sign_up_code(form) if form.is_valid() else False
    if sent is None:
        return _rate_limited(request)
    if not sent:
        context = {"form": form, "area_url": area_url}
        return _public(request, "alerts/join.html", context, status=422)
    initial = {"phone": form.cleaned_data["phone"]}
    return _public(request, "alerts/confirm.html", {"form": ConfirmForm(initial=initial)})


def _send_sign_up_code(form: JoinForm) -> bool | None:
    """Record the sign-up (pending its code) and text the code. False with the reason on
    the form; None when the code limits are reached."""
    phone = form.cleaned_data["phone"]
    if is_opted_out(phones.phone_hash(phone)):
        form.add_error(
            "phone",
            _(
                "This number asked us to stop sending it messages. To get alerts, first "
                "text START to the hotline from that phone."
            ),
        )
        return False
    # However many addresses ask, one number gets at most a few codes an hour, and the
    # whole page a bounded number (texts cost money and bother their recipients); with
    # the counter store down, no code is sent.
    number_key = keyed_hash(f"{phone}|{CODES_PER_NUMBER.current()}", purpose="alert-code")
    allowed = ratelimit.hit(
        number_key, limit=CODES_PER_NUMBER_LIMIT, window=CODES_PER_NUMBER, fail_open=False
    ) and ratelimit.hit(
        f"alert-codes-all|{CODES_PER_NUMBER.current()}",
        limit=settings.RR_SIGNUP_CODES_PER_HOUR,
        window=CODES_PER_NUMBER,
        fail_open=False,
    )
    if not allowed:
        return None
    try:
        subscriber = subscriptions.request_on_the_web(
            phone=phone, language=form.cleaned_data["language"], areas=form.cleaned_data["areas"]
        )
    except subscriptions.SubscriptionRefused as exc:
        form.add_error(None, str(exc))
        return False
    subscriptions.send_code(subscriber=subscriber)
    return True


@require_POST
def confirm(request: HttpRequest) -> HttpResponse:
    if not ratelimit.hit(
        client_key(request, window=SIGNUPS.current()),
        limit=settings.RR_SUBSCRIBE_PER_HOUR * 3,
        window=SIGNUPS,
    ):
        return _rate_limited(request)
    form = ConfirmForm(request.POST)
    if form.is_valid():
        try:
            subscriber = subscriptions.confirm_code(
                phone=form.cleaned_data["phone"], code=form.cleaned_data["code"]
            )
        except subscriptions.SubscriptionRefused as exc:
            form.add_error("code", str(exc))
        else:
            return _public(
                request, "alerts/subscribed.html", {"areas": subscriptions.area_labels(subscriber)}
            )
    return _public(request, "alerts/confirm.html", {"form": form}, status=422)

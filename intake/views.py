"""The public report form. No account, no cookie beyond CSRF, no stored address."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods

from core import ratelimit
from core.areas import as_feature_collection
from core.client import client_key
from core.models import Neighbourhood
from intake import proof_of_work
from intake.actions import SALUTE_FIELDS, WebReport, submit_web_report
from intake.forms import WebReportForm
from intake.models import Report
from intake.outage import unavailable_when_database_down
from intake.proof_of_work import SolvedChallenge

HOUR = ratelimit.Window("web-report", 3600)


def _page(
    request: HttpRequest, form: WebReportForm, *, status: int = 200, check_failed: bool = False
) -> HttpResponse:
    response = render(
        request,
        "intake/report_form.html",
        {
            "form": form,
            "area_url": reverse("intake:area"),
            "challenge_url": reverse("intake:challenge"),
            "page_language": request.LANGUAGE_CODE,
            "check_failed": check_failed,
            "pow_config": _widget_config(request),
        },
        status=status,
    )
    patch_cache_control(response, private=True, no_store=True)
    return response


def _widget_config(request: HttpRequest) -> dict[str, Any]:
    """What static/rr/proof-of-work.js gives the widget: our worker and our texts."""
    strings = {
        "ariaLinkLabel": _("ALTCHA (the check's website)"),
        "enterCode": _("Enter code"),
        "enterCodeAria": _("Enter the code you hear. Press Space to play the audio."),
        "error": _("The check failed. Try again, or text or call the hotline."),
        "expired": _("The check expired. It runs again on its own."),
        "footer": "",
        "getAudioChallenge": _("Get an audio code"),
        "label": _("I am a person sending this"),
        "loading": _("Loading…"),
        "reload": _("Try again"),
        "verify": _("Check"),
        "verificationRequired": _("Please wait for the check to finish."),
        "verified": _("Checked. You can send the report."),
        "verifying": _("Checking… this takes a few seconds."),
        "waitAlert": _("Checking… please wait."),
    }
    announce = {
        "verifying": _("Checking that a person is sending this form. This takes a few seconds."),
        "verified": _("Check finished. You can send the report."),
        "error": strings["error"],
        "expired": strings["expired"],
    }
    return {
        "language": request.LANGUAGE_CODE,
        "worker": static("vendor/altcha/workers/pbkdf2.js"),
        "strings": {key: str(value) for key, value in strings.items()},
        "announce": {key: str(value) for key, value in announce.items()},
    }


@require_http_methods(["GET", "POST"])
@unavailable_when_database_down
def report(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _page(request, WebReportForm(initial={"submission": uuid.uuid4()}))
    key = client_key(request, window=HOUR.current())
    if not ratelimit.hit(key, limit=settings.RR_WEB_REPORTS_PER_HOUR, window=HOUR):
        response = render(request, "intake/rate_limited.html", status=429)
        response["Retry-After"] = str(HOUR.seconds)
        return response
    solved = _solved_challenge(request)
    if isinstance(solved, HttpResponse):
        return solved
    form = WebReportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, form, status=422)
    data = form.cleaned_data
    try:
        _submit(request, data, solved)
    except proof_of_work.ChallengeAlreadyUsed:
        return _check_failed(request)
    return _thanks_redirect(request)


def _solved_challenge(request: HttpRequest) -> SolvedChallenge | HttpResponse:
    """The form's proof-of-work, or the answer to give when it does not hold."""
    try:
        solved = proof_of_work.verify(request.POST.get("altcha", ""))
    except proof_of_work.InvalidChallenge:
        return _check_failed(request)
    if proof_of_work.was_spent(solved):
        # The same browser sending the same form twice is one report; anyone else
        # sending a used payload is refused.
        if _already_filed(request.POST.get("submission", "")):
            return _thanks_redirect(request)
        return _check_failed(request)
    return solved


def _submit(request: HttpRequest, data: dict[str, Any], solved: SolvedChallenge) -> None:
    submit_web_report(
        WebReport(
            text=data["text"].strip(),
            language=request.LANGUAGE_CODE,
            submission_key=data["submission"],
            observed_at=data["observed_at"],
            location_text=data["location_text"].strip(),
            point=data["point"],
            callback_number=data["callback"],
            salute={name: data.get(f"salute_{name}", "").strip() for name in SALUTE_FIELDS},
            photo=data["photo"],
            challenge=solved,
        )
    )


def _check_failed(request: HttpRequest) -> HttpResponse:
    """The proof-of-work was missing, expired, forged or used: 400 with the form again
    (what was typed kept, photos aside) and a fresh challenge."""
    form = WebReportForm(request.POST)
    form.is_valid()
    return _page(request, form, status=400, check_failed=True)


def _already_filed(submission: str) -> bool:
    try:
        key = uuid.UUID(submission)
    except ValueError:
        return False
    return Report.objects.filter(submission_key=key).exists()


def _thanks_redirect(request: HttpRequest) -> HttpResponse:
    return redirect(f"{reverse('intake:thanks')}?lang={request.LANGUAGE_CODE}")


@require_GET
def challenge(request: HttpRequest) -> JsonResponse:
    """A fresh proof-of-work challenge for the form's widget; never cached."""
    response = JsonResponse(proof_of_work.new_challenge())
    patch_cache_control(response, private=True, no_store=True)
    return response


@require_GET
def thanks(request: HttpRequest) -> HttpResponse:
    response = render(request, "intake/thanks.html")
    patch_cache_control(response, public=True, max_age=300)
    return response


@require_GET
def area(request: HttpRequest) -> JsonResponse:
    response = JsonResponse(as_feature_collection(Neighbourhood.objects.order_by("name")))
    patch_cache_control(response, public=True, max_age=300)
    return response

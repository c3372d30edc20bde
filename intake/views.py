"""The public report form. No account, no cookie beyond CSRF, no stored address."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET, require_http_methods

from core import ratelimit
from core.areas import as_feature_collection
from core.client import client_key
from core.models import Neighbourhood
from intake.actions import SALUTE_FIELDS, WebReport, submit_web_report
from intake.forms import WebReportForm
from intake.outage import unavailable_when_database_down

HOUR = ratelimit.Window("web-report", 3600)


def _page(request: HttpRequest, form: WebReportForm, *, status: int = 200) -> HttpResponse:
    response = render(
        request,
        "intake/report_form.html",
        {"form": form, "area_url": reverse("intake:area"), "page_language": request.LANGUAGE_CODE},
        status=status,
    )
    patch_cache_control(response, private=True, no_store=True)
    return response


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
    form = WebReportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, form, status=422)
    data = form.cleaned_data
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
        )
    )
    return redirect(f"{reverse('intake:thanks')}?lang={request.LANGUAGE_CODE}")


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

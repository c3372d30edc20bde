"""Request-wide policies: body size, access logging without addresses, language, caching."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation

from core.i18n import language_from_request

logger = logging.getLogger("rapidresponse.access")

GetResponse = Callable[[HttpRequest], HttpResponse]
WEBHOOK_PREFIX = "/hooks/"
# Whole path segments (a trailing slash), so a later "/reports…" page is not public.
PUBLIC_PREFIXES = ("/report/", "/static/", "/healthz", "/hooks/")


# Paths that may carry more than RR_MAX_BODY_BYTES say so here (dispatch: a responder's
# valid field link, for photos and videos). A rule returns a limit or None.
LargeBodyRule = Callable[[str], "int | None"]
large_body_rules: list[LargeBodyRule] = []


def allow_large_bodies(rule: LargeBodyRule) -> None:
    if rule not in large_body_rules:
        large_body_rules.append(rule)


def body_limit_for(path: str) -> int:
    if path.startswith(WEBHOOK_PREFIX):
        return int(settings.RR_MAX_WEBHOOK_BODY_BYTES)
    for rule in large_body_rules:
        limit = rule(path)
        if limit:
            return limit
    return int(settings.RR_MAX_BODY_BYTES)


class RequestSizeLimitMiddleware:
    """Refuse oversized bodies with 413 (WSGI and the test client; under ASGI,
    core.asgi.BodySizeLimit refuses them before Django reads the body at all).

    Django limits form fields but not the total size of a multipart upload, and a
    webhook never needs more than a few kilobytes.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = body_limit_for(request.path)
        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            return HttpResponse("Invalid Content-Length.\n", status=400, content_type="text/plain")
        if length > limit:
            return HttpResponse(
                "The request body is too large.\n", status=413, content_type="text/plain"
            )
        return self.get_response(request)


class AccessLogMiddleware:
    """One line per request: method, route pattern, status, duration. Never the client
    address, the query string or the concrete path (which can carry numbers, names,
    signed links)."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        if not request.path.startswith("/static/"):
            # The route, not the path: paths carry signed tokens and record ids.
            match = getattr(request, "resolver_match", None)
            where = f"/{match.route}" if match is not None and match.route else "[unmatched]"
            logger.info(
                "%s %s %s %.1fms",
                request.method,
                where,
                response.status_code,
                (time.perf_counter() - started) * 1000,
            )
        return response


class LanguageMiddleware:
    """Activate the page language without a cookie.

    Staff get their profile language; everyone else gets ``?lang=`` or the browser's
    Accept-Language, limited to the network's languages.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        language = language_from_request(request)
        translation.activate(language)
        request.LANGUAGE_CODE = language
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        response.headers.setdefault("Vary", "Accept-Language")
        translation.deactivate()
        return response


class StaffNoStoreMiddleware:
    """Pages behind a login hold personal data: no browser or proxy may keep a copy."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(PUBLIC_PREFIXES):
            response.headers["Cache-Control"] = "no-store"
        return response

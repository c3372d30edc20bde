"""Language choice for pages and messages, limited to the network's languages."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation.trans_real import parse_accept_lang_header


def network_languages() -> list[str]:
    return list(settings.RR_LANGUAGES)


def default_language() -> str:
    return str(settings.RR_LANGUAGES[0])


def supported(code: str | None) -> str | None:
    """The network language ``code`` names (``es-MX`` -> ``es``), or None."""
    if not code:
        return None
    base = code.strip().lower().replace("_", "-").split("-")[0]
    return base if base in settings.RR_LANGUAGES else None


def language_from_request(request: HttpRequest) -> str:
    requested = supported(request.GET.get("lang"))
    if requested:
        return requested
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        preferred = supported(getattr(user, "language", None))
        if preferred:
            return preferred
    for code, _quality in parse_accept_lang_header(request.headers.get("Accept-Language", "")):
        match = supported(code)
        if match:
            return match
    return default_language()

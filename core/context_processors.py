from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def network(request: HttpRequest) -> dict[str, object]:
    return {
        "network_name": settings.RR_NETWORK_NAME,
        "hotline_number": settings.RR_HOTLINE_NUMBER,
        "network_languages": settings.LANGUAGES,
        "console_provider": settings.RR_SMS_PROVIDER == "console",
    }

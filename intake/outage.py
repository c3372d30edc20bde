"""The public form while the database is unreachable.

Texts wait in the spool (messaging/spool.py) because the provider retries a webhook and
the sender needs no page. The form does not spool: its checks (service area, the
submission token that makes a double submission one report) and its photo need the
database and are what let us say "received", and the person is still there to press
send again. So they get a clear 503 page saying nothing was saved, to try again or to
text the hotline, rather than a promise we could not keep.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_cache_control

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30

View = Callable[[HttpRequest], HttpResponse]


def unavailable_when_database_down(view: View) -> View:
    @functools.wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        try:
            return view(request)
        except (OperationalError, InterfaceError):
            logger.warning("Database unreachable; the report form answered 503.")
            response = render(request, "intake/unavailable.html", status=503)
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            patch_cache_control(response, private=True, no_store=True)
            return response

    return wrapper

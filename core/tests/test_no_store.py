"""StaffNoStoreMiddleware: only the public paths may be kept by a browser or proxy."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from core.middleware import StaffNoStoreMiddleware


@pytest.mark.parametrize(
    ("path", "stored"),
    [
        ("/report/", True),
        ("/report/challenge/", True),
        ("/static/rr/site.css", True),
        ("/healthz", True),
        ("/reports/", False),  # a whole segment, not a prefix of one
        ("/reporting/", False),
        ("/console/", False),
        ("/cases/", False),
    ],
)
def test_only_public_paths_may_be_stored(path: str, stored: bool) -> None:
    middleware = StaffNoStoreMiddleware(lambda request: HttpResponse("ok"))
    response = middleware(RequestFactory().get(path))
    assert (response.headers.get("Cache-Control") != "no-store") is stored

"""Step-up authentication before exports (R14, ASVS 7.5.3).

The person types their password again; the session records when. Exports ask
``recently_reauthenticated`` and send anyone else to ``cases:reauth`` first. This is a
small stand-in with a stable interface: when accounts gains its own re-authentication
(with MFA), this function is the one place to switch over.
"""

from __future__ import annotations

import time

from django.http import HttpRequest

SESSION_KEY = "cases_reauth_at"
FAILURES_KEY = "cases_reauth_failures"
# After this many wrong passwords in one session, the session ends.
MAX_FAILURES = 5


def recently_reauthenticated(request: HttpRequest, seconds: int = 300) -> bool:
    at = request.session.get(SESSION_KEY)
    if not isinstance(at, int | float):
        return False
    return 0 <= time.time() - float(at) <= seconds


def mark_reauthenticated(request: HttpRequest) -> None:
    request.session[SESSION_KEY] = time.time()
    request.session.pop(FAILURES_KEY, None)


def record_failure(request: HttpRequest) -> int:
    """Count a wrong password; returns how many this session has had."""
    failures = int(request.session.get(FAILURES_KEY, 0)) + 1
    request.session[FAILURES_KEY] = failures
    return failures

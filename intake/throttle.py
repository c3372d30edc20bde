"""Per-sender limits on reports by text message.

One phone may open ``RR_SMS_REPORTS_PER_SENDER`` new reports per
``RR_SMS_REPORT_WINDOW_SECONDS``. Beyond that nothing is lost and nothing is hidden:
every text is stored as usual (the webhook does not change), but it is added to that
sender's latest report instead of opening another, and the sender gets one "we have
your reports" reply per window instead of an acknowledgement per text.

Two counts decide, each keyed by hashes only (no number in a cache key or row):

- in the webhook, a fixed-window counter in the cache (``core.ratelimit``) under a
  keyed hash of the sender's hash and the window, which sees a burst before any of it
  is processed and chooses the reply;
- when a text is processed, the sender's reports in the window, counted in the database
  under the incidents lock, which decides whether a new report opens. So the cap holds
  with the cache down, when the counter fails open and only the replies are not
  limited.

Keywords (STOP, HELP, JOIN, YES 4821 …) never reach this: the router answers them
first. Phones of active responders and dispatchers are never throttled either; their
apps register that check (``register_trusted_sender_check``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext as _

from core import ratelimit
from core.crypto import keyed_hash
from intake.models import Channel, Report

logger = logging.getLogger(__name__)

TrustedSenderCheck = Callable[[str], bool]
_trusted_checks: list[TrustedSenderCheck] = []


def register_trusted_sender_check(check: TrustedSenderCheck) -> None:
    """``check(sender_hash)`` is True for a phone whose texts are never throttled."""
    if check not in _trusted_checks:
        _trusted_checks.append(check)


def is_trusted(sender_hash: str) -> bool:
    return any(check(sender_hash) for check in _trusted_checks)


def window() -> ratelimit.Window:
    return ratelimit.Window("sms-reports", settings.RR_SMS_REPORT_WINDOW_SECONDS)


def _counter_key(sender_hash: str, part: str) -> str:
    return keyed_hash(f"{sender_hash}|{window().current()}|{part}", purpose="sms-sender")


def over_limit_now(sender_hash: str) -> bool:
    """Count one report text from this sender in the cache; True past the limit.

    Trusted phones are counted too, and let through only once past it: almost every
    sender is under the limit, and the trusted checks cost a query each."""
    key = _counter_key(sender_hash, "reports")
    if ratelimit.hit(key, limit=settings.RR_SMS_REPORTS_PER_SENDER, window=window()):
        return False
    return not is_trusted(sender_hash)


def first_notice_in_window(sender_hash: str) -> bool:
    """True once per window and sender: whether to send the "we have your reports"
    reply. With the cache down it is False: that sender already had an
    acknowledgement for each of the reports that reached the limit."""
    try:
        return bool(
            cache.add(f"ratelimit:{_counter_key(sender_hash, 'notice')}", 1, window().seconds)
        )
    except Exception:
        logger.warning("Rate-limit store unavailable; the throttled reply is not sent.")
        return False


def throttled_reply() -> str:
    """The one reply a throttled sender gets per window, in the active language."""
    return _(
        "%(network)s: we have your reports and a volunteer is looking at them. More texts "
        "are added to your latest report; no need to send each one again."
    ) % {"network": settings.RR_NETWORK_NAME}


def latest_report_if_over_limit(sender_hash: str, received_at: datetime) -> Report | None:
    """The sender's latest text report when they already opened the limit's worth of
    reports within a window either side of ``received_at``; None when a new one may open.

    Call it under the incidents lock (intake.actions does) so that two workers cannot
    both open the sender's report past the limit."""
    if not sender_hash:
        return None
    # Either side of the text: texts are not always processed in the order they came
    # (several workers, the sweep after an outage), and an earlier text processed after
    # later ones must see the reports they already opened.
    span = timedelta(seconds=settings.RR_SMS_REPORT_WINDOW_SECONDS)
    recent = Report.objects.filter(
        reporter_hash=sender_hash,
        channel=Channel.SMS,
        received_at__gt=received_at - span,
        received_at__lt=received_at + span,
    )
    if recent.count() < settings.RR_SMS_REPORTS_PER_SENDER or is_trusted(sender_hash):
        return None
    # Never into a report whose incident a dispatcher closed: that incident is off the
    # console, so a new sighting added there would go unseen. A new report opens
    # instead, at most one per closing, and the following texts join it.
    latest = recent.select_related("incident").order_by("-received_at", "-pk").first()
    if latest is not None and latest.incident is not None and not latest.incident.is_open:
        return None
    return latest


def addition(text: str, received_at: datetime) -> str:
    """How a throttled text appears at the end of the report it joins."""
    stamp = timezone.localtime(received_at).strftime("%H:%M")
    return f"\n\n[+ {stamp}] {text}"

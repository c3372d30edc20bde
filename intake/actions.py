"""Turning what people send into reports."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    transaction,
)
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from core import audit, crypto, phones
from core.areas import OutsideServiceArea, locate
from core.enqueue import enqueue_with_transaction
from core.geo import Point, find_coordinates
from core.locks import one_local_writer, serialize
from core.models import AuditAction
from incidents import console
from incidents.actions import file_new_report
from incidents.console import INCIDENTS_LOCK
from incidents.models import ConsoleEventKind
from intake import language, proof_of_work, throttle
from intake.models import Channel, Report, ReportPhoto
from intake.photos import CleanPhoto
from messaging.models import InboundKind, InboundMessage

logger = logging.getLogger(__name__)

# Messages whose processing has not finished after this long are queued again; the
# delay doubles with each attempt (retry_delay), so ten attempts span about nine hours.
RETRY_AFTER = timedelta(seconds=30)
MAX_RETRY_DELAY = timedelta(hours=6)
MAX_ATTEMPTS = 10


def acknowledgement(*, has_text: bool) -> str:
    """The answer to a report, in the active language."""
    parts = []
    if has_text:
        parts.append(
            _(
                "%(network)s received your report. Trained volunteers check every report "
                "before any alert goes out."
            )
            % {"network": settings.RR_NETWORK_NAME}
        )
    else:
        parts.append(
            _("%(network)s received your photo. Please also text what you see and where.")
            % {"network": settings.RR_NETWORK_NAME}
        )
    if settings.RR_KNOW_YOUR_RIGHTS_URL:
        parts.append(_("Know your rights: %(url)s") % {"url": settings.RR_KNOW_YOUR_RIGHTS_URL})
    else:
        parts.append(_("Reply HELP for know-your-rights information."))
    return " ".join(parts)


def handle_report_message(message: InboundMessage, known_language: str | None) -> str:
    """The router's handler for every inbound SMS that is not a keyword.

    Runs inside the webhook's transaction: it decides the language and the reply, and
    queues the report's creation as a task committed with the message, so the webhook
    answers at once and a failure later leaves the stored message to be retried.
    """
    from intake.tasks import process_inbound_message

    detected = language.detect(message.body, min_words=4 if known_language else 1)
    message.language = detected or known_language or message.language
    with translation.override(message.language):
        if not message.body and message.media_count == 0:
            message.kind = InboundKind.EMPTY
            return empty_message_reply()
        message.kind = InboundKind.REPORT
        message.retry_at = timezone.now() + RETRY_AFTER
        # The message is inserted after this handler returns: its report is queued (or
        # made, for a worker that stores it) once it has its id.
        if message.report_at_once:
            message.when_inserted(lambda: make_report_at_once(message))
        else:
            message.when_inserted(
                lambda: enqueue_with_transaction(process_inbound_message, message_id=message.pk)
            )
        # A spooled text was counted when it was spooled (offline_reply); a provider's
        # retry of a stored text fails its insert and repeats the first reply, so it is
        # not counted a second time either.
        counted = message.answered_offline or message.stored_before
        if not counted and throttle.over_limit_now(message.sender_hash):
            # Still stored and processed (it joins the sender's latest report); one
            # reply per window instead of one per text.
            if throttle.first_notice_in_window(message.sender_hash):
                return throttle.throttled_reply()
            return ""
        return acknowledgement(has_text=bool(message.body))


def offline_reply(body: str, media_count: int, sender_hash: str = "") -> str:
    """The report handler's answer to a text that goes to the spool (the database is
    unreachable, or a surge is queued behind it): the same words, in the language of the
    text or the default one, and the same per-sender limit on replies (counted in the
    cache, which needs no database; the replay does not count it again)."""
    text = body.strip()
    with translation.override(language.detect(text) or str(settings.RR_LANGUAGES[0])):
        if not text and media_count == 0:
            return empty_message_reply()
        try:
            over = bool(sender_hash) and throttle.over_limit_now(sender_hash)
        except DatabaseError:
            # Past the count, whether the phone is a trusted one needs the database,
            # which is down: acknowledge rather than fail to spool.
            over = False
        if over:
            return (
                throttle.throttled_reply() if throttle.first_notice_in_window(sender_hash) else ""
            )
        return acknowledgement(has_text=bool(text))


def empty_message_reply() -> str:
    return _(
        "%(network)s: your message was empty. Text what you see and where "
        "(street, corner or landmark)."
    ) % {"network": settings.RR_NETWORK_NAME}


@transaction.atomic
def create_report_from_message(*, message_id: int) -> Report | None:
    """Make the report for a stored SMS, once. Safe to run again after a crash."""
    message = InboundMessage.objects.select_for_update().get(pk=message_id)
    if message.processed_at is not None or message.kind != InboundKind.REPORT:
        return None
    existing = Report.objects.filter(inbound_message=message).first()
    if existing is not None:
        message.processed_at = timezone.now()
        message.save(update_fields=["processed_at"])
        return existing
    return _make_report(message)


def make_report_at_once(message: InboundMessage) -> Report | None:
    """The report for a message inserted in this very transaction, by a worker that
    stores texts (``messaging.accepted``): a queued task for it would cost four more
    statements and a wait for the task queue, per text of a surge. A failure takes back
    only the report's writes (a savepoint): the message stays stored and unprocessed,
    and the sweep makes its report after ``RETRY_AFTER``, as when a task fails."""
    try:
        with transaction.atomic():
            return _make_report(message)
    except (OperationalError, InterfaceError):
        raise  # the database is gone: the whole store fails and is tried again
    except Exception:
        message.processed_at = None
        # The id only: the text and the number are personal data.
        logger.exception("No report made yet for message %s; the sweep retries it.", message.pk)
        return None


def _make_report(message: InboundMessage) -> Report:
    # Counting the sender's reports and opening one happen under the lock that every
    # report's grouping takes anyway, so two workers cannot both open one past the cap.
    serialize(INCIDENTS_LOCK)
    latest = throttle.latest_report_if_over_limit(message.sender_hash, message.received_at)
    if latest is not None:
        return _add_to_latest_report(latest, message)
    report = Report(
        channel=Channel.SMS,
        received_at=message.received_at,
        observed_at=message.received_at,
        text=message.body,
        language=message.language,
        reporter_contact=message.sender,
        reporter_hash=message.sender_hash,
        inbound_message=message,
        media_count=message.media_count,
    )
    place_if_inside(report, find_coordinates(message.body))
    report.save()
    file_new_report(report=report)
    message.processed_at = timezone.now()
    message.save(update_fields=["processed_at"])
    audit.record(actor=None, action=AuditAction.REPORT_RECEIVED, target=report, channel=Channel.SMS)
    return report


def _add_to_latest_report(report: Report, message: InboundMessage) -> Report:
    """A text past the sender's limit: its words and photos join their latest report
    (so a dispatcher sees everything, in one row), and the console shows the change."""
    report = Report.objects.select_for_update().get(pk=report.pk)
    if message.body:
        report.text = (report.text or "") + throttle.addition(message.body, message.received_at)
    report.media_count = min(report.media_count + message.media_count, 32767)
    report.save(update_fields=["text", "media_count"])
    console.publish(ConsoleEventKind.REPORT, report.uuid)
    if report.incident is not None:
        console.publish(ConsoleEventKind.INCIDENT, report.incident.uuid)
    message.processed_at = timezone.now()
    message.save(update_fields=["processed_at"])
    audit.record(
        actor=None,
        action=AuditAction.REPORT_TEXT_ADDED,
        target=report,
        channel=Channel.SMS,
        reason="sender_limit",
    )
    return report


def place_if_inside(report: Report, point: Point | None) -> None:
    """Place a report found to name a point, if the point is in the service area;
    otherwise keep the text and let a dispatcher decide where it belongs."""
    if point is None:
        return
    try:
        report.neighbourhood = locate(point)
    except OutsideServiceArea:
        return
    report.lat, report.lng, report.h3_cell = point.lat, point.lng, point.cell()


def retry_delay(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, … doubling, at most 6 hours."""
    delay: timedelta = min(RETRY_AFTER * 2**attempts, MAX_RETRY_DELAY)
    return delay


def queue_unprocessed_messages(*, now: datetime | None = None) -> int:
    """Queue again every report message whose processing has not finished by its retry
    time (a worker that died, a task that failed). Returns how many were queued.

    Processing is idempotent, so a message queued twice still makes one report."""
    from intake.tasks import process_inbound_message

    moment = now or timezone.now()
    due = list(
        InboundMessage.objects.filter(
            processed_at__isnull=True,
            kind=InboundKind.REPORT,
            retry_at__lte=moment,
            attempts__lt=MAX_ATTEMPTS,
        )
        .order_by("retry_at")
        .values_list("pk", "attempts")[:500]
    )
    for message_id, attempts in due:
        InboundMessage.objects.filter(pk=message_id).update(
            attempts=attempts + 1, retry_at=moment + retry_delay(attempts + 1)
        )
        process_inbound_message.enqueue(message_id=message_id)
    if due:
        logger.warning("Queued %d unfinished messages again.", len(due))
    return len(due)


@dataclass
class WebReport:
    """What the public form collected, already validated."""

    text: str
    language: str
    submission_key: uuid.UUID
    observed_at: datetime
    location_text: str = ""
    point: Point | None = None
    callback_number: str = ""
    salute: dict[str, str] = field(default_factory=dict)
    photo: CleanPhoto | None = None
    # The proof-of-work the form was sent with; spent in the report's transaction.
    challenge: proof_of_work.SolvedChallenge | None = None


SALUTE_FIELDS = ("size", "activity", "location", "uniform", "time", "equipment")


def submit_web_report(data: WebReport) -> Report:
    """Save a web report and group it; a repeated submission returns the first report.

    Raises ``proof_of_work.ChallengeAlreadyUsed`` when its proof-of-work already filed
    another report (a replay), and then stores nothing."""
    try:
        with one_local_writer(), transaction.atomic():
            return _create_web_report(data)
    except IntegrityError:
        existing = Report.objects.filter(submission_key=data.submission_key).first()
        if existing is not None:
            return existing
        if data.challenge is not None and proof_of_work.was_spent(data.challenge):
            raise proof_of_work.ChallengeAlreadyUsed from None
        raise


def _create_web_report(data: WebReport) -> Report:
    if data.challenge is not None:
        proof_of_work.spend(data.challenge)
    detected = language.detect(data.text)
    report = Report(
        channel=Channel.WEB,
        text=data.text,
        language=detected or data.language,
        observed_at=data.observed_at,
        location_text=data.location_text,
        submission_key=data.submission_key,
        media_count=1 if data.photo else 0,
    )
    for name in SALUTE_FIELDS:
        setattr(report, f"salute_{name}", data.salute.get(name, ""))
    if data.point is not None:
        report.neighbourhood = locate(data.point)
        report.lat, report.lng, report.h3_cell = data.point.lat, data.point.lng, data.point.cell()
    if data.callback_number:
        e164 = phones.normalize(data.callback_number)
        report.reporter_contact = e164
        report.reporter_hash = phones.phone_hash(e164)
    report.save()
    if data.photo is not None:
        photo = ReportPhoto(
            report=report,
            content_type=data.photo.content_type,
            sha256=data.photo.sha256,
            width=data.photo.width,
            height=data.photo.height,
        )
        sealed = crypto.encrypt_bytes(data.photo.data, context=photo_context(photo))
        photo.file.save(f"{photo.uuid}.bin", ContentFile(sealed), save=False)
        photo.save()
    file_new_report(report=report)
    audit.record(actor=None, action=AuditAction.REPORT_RECEIVED, target=report, channel=Channel.WEB)
    return report


def photo_context(photo: ReportPhoto) -> str:
    return f"{ReportPhoto._meta.db_table}.file.{photo.uuid}"


def file_voicemail_report(*, language: str, received_at: datetime, caller_hash: str) -> Report:
    """A voicemail left on the hotline, as a report to call back, in the caller's
    transaction. The call keeps the recording and the number (one place to show it for
    a call back, and to purge it); the report keeps only the number's keyed hash."""
    report = Report.objects.create(
        channel=Channel.VOICE,
        received_at=received_at,
        observed_at=received_at,
        language=language,
        reporter_hash=caller_hash,
    )
    file_new_report(report=report)
    audit.record(
        actor=None, action=AuditAction.REPORT_RECEIVED, target=report, channel=Channel.VOICE
    )
    return report


@dataclass
class CallReport:
    """What a dispatcher wrote down while on a call."""

    text: str
    language: str
    location_text: str = ""
    point: Point | None = None
    salute: dict[str, str] = field(default_factory=dict)


def file_call_report(
    *,
    actor: object,
    data: CallReport,
    received_at: datetime,
    caller_hash: str,
    submission_key: uuid.UUID | None = None,
) -> Report:
    """A report a dispatcher writes from a call, grouped like any other; a repeated
    submission (``submission_key``) returns the first report."""
    try:
        return _create_call_report(actor, data, received_at, caller_hash, submission_key)
    except IntegrityError:
        existing = Report.objects.filter(submission_key=submission_key).first()
        if submission_key is None or existing is None:
            raise
        return existing


def _create_call_report(
    actor: object,
    data: CallReport,
    received_at: datetime,
    caller_hash: str,
    submission_key: uuid.UUID | None,
) -> Report:
    with one_local_writer(), transaction.atomic():
        report = Report(
            channel=Channel.VOICE,
            received_at=received_at,
            observed_at=received_at,
            text=data.text,
            language=data.language,
            location_text=data.location_text,
            reporter_hash=caller_hash,
            submission_key=submission_key,
        )
        for name in SALUTE_FIELDS:
            setattr(report, f"salute_{name}", data.salute.get(name, ""))
        place_if_inside(report, data.point or find_coordinates(data.text))
        report.save()
        file_new_report(report=report)
        audit.record(
            actor=actor, action=AuditAction.REPORT_RECEIVED, target=report, channel=Channel.VOICE
        )
        return report

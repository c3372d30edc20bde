"""Alerts: compose, approve, fan out, pause, resume, cancel.

Only a verified incident gives an alert and only a false one gives rumour control; a
second dispatcher approves (unless turned off); at most RR_ALERTS_PER_AREA_PER_HOUR
alerts per neighbourhood per hour; the coordinators' kill switch stops everything.
Fan-out writes one outbox row per recipient in bulk, nearest first, each valid for
RR_ALERT_VALIDITY_MINUTES; a unique dedupe key per (alert, subscriber) makes a fan-out
that is run again (a worker killed halfway) add only what is missing.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import h3
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from alerts.models import (
    Alert,
    AlertControl,
    AlertKind,
    AlertStatus,
    AlertTemplate,
    Subscriber,
    SubscriberCell,
    SubscriberStatus,
)
from core import audit
from core.db import int_rows
from core.geo import Point, cells_touching, distance_meters
from core.models import AuditAction
from incidents.models import Incident, IncidentStatus
from messaging.models import OptOut, OutboxBody, OutboxKind, OutboxMessage, OutboxStatus
from messaging.outbox import cancel_batch, hold_batch, queue_selected, release_batch, wake_sender

CELL_RESOLUTION = 8
MAX_RADIUS_M = 10_000


class AlertRefused(ValueError):
    """The alert cannot go out as asked; the message says why."""


def default_template(kind: AlertKind) -> str:
    """The built-in text, in the active language, when coordinators have not set one.
    Short on purpose, and the Spanish avoids the accents that would force UCS-2: each
    fits one segment for a place name of ordinary length."""
    if kind == AlertKind.RUMOUR:
        return _(
            "{network} RUMOUR CHECK: reports of ICE near {place} were checked and are "
            "FALSE. Share only verified news. Reply STOP to end."
        )
    return _(
        "{network} VERIFIED: immigration agents at {place} ({time}). Do not open the "
        "door without a judge's warrant. Reply STOP to end."
    )


def template_for(kind: AlertKind, language: str) -> str:
    saved = AlertTemplate.objects.filter(kind=kind, language=language).first()
    if saved is not None:
        return saved.body
    with translation.override(language):
        return default_template(kind)


def fill(template: str, incident: Incident, language: str) -> str:
    hood = incident.neighbourhood.name if incident.neighbourhood else ""
    with translation.override(language):
        values = {
            "network": settings.RR_NETWORK_NAME,
            "place": incident.location_text or hood,
            "neighbourhood": hood or incident.location_text,
            "time": formats.time_format(timezone.localtime(incident.last_seen), "H:i"),
        }
    text = template
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def suggested_bodies(incident: Incident, kind: AlertKind) -> dict[str, str]:
    return {
        language: fill(template_for(kind, language), incident, language)
        for language in settings.RR_LANGUAGES
    }


# Audience


def audience_cells(incident: Incident, radius_m: int) -> list[int]:
    return cells_touching(incident.point, radius_m, CELL_RESOLUTION)


def audience_count(incident: Incident, radius_m: int) -> int:
    """Active subscribers whose areas meet the circle, except numbers that opted out:
    one COUNT, for the preview that follows the radius as it changes."""
    return int(_audience_query(incident, radius_m).count())


@dataclass(frozen=True)
class DrainEstimate:
    """How long an alert to ``recipients`` takes on the configured sender, against the
    validity period after which what has not gone out expires (carriers count segments:
    a two-part message takes two of the sender's slots)."""

    recipients: int
    segments: int
    seconds: int
    validity_seconds: int
    in_time: int

    @property
    def too_slow(self) -> bool:
        return self.seconds > self.validity_seconds

    @property
    def too_late(self) -> int:
        """How many would expire unsent."""
        return self.recipients - self.in_time

    @property
    def minutes(self) -> int:
        return math.ceil(self.seconds / 60)

    @property
    def validity_minutes(self) -> int:
        return self.validity_seconds // 60


def drain_estimate(recipients: int, segments: int = 1) -> DrainEstimate:
    rate = max(settings.RR_SMS_RATE_PER_SECOND, 0.01)
    segments = max(1, segments)
    validity = settings.RR_ALERT_VALIDITY_MINUTES * 60
    return DrainEstimate(
        recipients=recipients,
        segments=segments,
        seconds=math.ceil(recipients * segments / rate),
        validity_seconds=validity,
        # The small margin keeps a float just under a whole number (6000 * 0.29) whole.
        in_time=min(recipients, math.floor(validity * rate / segments + 1e-9)),
    )


def _audience_query(incident: Incident, radius_m: int) -> Any:
    """Subscribers of the cells around the incident who are active and have not opted
    out (the count the compose page shows; ``_audience_select`` writes the same people,
    and a test holds the two together). "Is among the subscribers of these cells" lets
    the database start from the cells; "has a cell in the list" let SQLite start from
    every subscriber instead."""
    in_area = SubscriberCell.objects.filter(h3_cell__in=audience_cells(incident, radius_m))
    opted_out = OptOut.objects.filter(phone_hash=OuterRef("phone_hash"))
    return Subscriber.objects.filter(
        status=SubscriberStatus.ACTIVE, pk__in=in_area.values("subscriber_id")
    ).exclude(Exists(opted_out))


def _check_radius(radius_m: int) -> None:
    if not 100 <= radius_m <= MAX_RADIUS_M:
        raise AlertRefused(_("Choose a radius between 100 m and 10 km."))


# Rules


def sending_enabled() -> bool:
    control = AlertControl.objects.filter(pk=1).first()
    return control is None or control.sending_enabled


def _control_for_update() -> AlertControl:
    """The kill switch, locked. Everything that starts or restarts sending takes it
    first (and only then an alert), so switching off cannot slip between a check and
    the rows being written."""
    AlertControl.objects.get_or_create(pk=1)
    return AlertControl.objects.select_for_update().get(pk=1)


def _check_incident(incident: Incident, kind: AlertKind) -> None:
    if kind == AlertKind.ALERT and incident.status != IncidentStatus.VERIFIED:
        raise AlertRefused(_("Only a verified incident can produce an alert."))
    if kind == AlertKind.RUMOUR and incident.status != IncidentStatus.FALSE:
        raise AlertRefused(_("Rumour control is only for incidents found false."))


def _check_enabled(enabled: bool) -> None:
    if not enabled:
        raise AlertRefused(_("Alert sending is switched off by a coordinator."))


def _check_breaker(incident: Incident, kind: AlertKind) -> None:
    """At most RR_ALERTS_PER_AREA_PER_HOUR alerts approved per neighbourhood (or per
    incident outside any) in the last hour. Rumour control is not limited.

    Every approval counts, whatever became of the alert since: a cancelled alert may
    already have reached part of its audience, and approve, cancel, approve again must
    not get around the limit."""
    if kind != AlertKind.ALERT:
        return
    recent = Alert.objects.filter(
        kind=AlertKind.ALERT, approved_at__gte=timezone.now() - timedelta(hours=1)
    )
    if incident.neighbourhood_id is not None:
        recent = recent.filter(incident__neighbourhood_id=incident.neighbourhood_id)
    else:
        recent = recent.filter(incident=incident)
    if recent.count() >= settings.RR_ALERTS_PER_AREA_PER_HOUR:
        raise AlertRefused(
            _("This area already had %(n)d alert(s) in the last hour; no more can go out now.")
            % {"n": settings.RR_ALERTS_PER_AREA_PER_HOUR}
        )


def _clean_text(text: str | None) -> str:
    """Line breaks as the phone counts them: a CRLF from a browser form is two
    characters, and can push a text into a second segment."""
    return (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()


# Lifecycle


@transaction.atomic
def compose(
    *, actor: Any, incident: Incident, kind: AlertKind, radius_m: int, bodies: dict[str, str]
) -> Alert:
    incident = Incident.objects.select_related("neighbourhood").get(pk=incident.pk)
    _check_incident(incident, kind)
    _check_radius(radius_m)
    _check_enabled(sending_enabled())
    _check_breaker(incident, kind)
    cleaned = {lang: _clean_text(bodies.get(lang)) for lang in settings.RR_LANGUAGES}
    missing = [lang for lang, text in cleaned.items() if not text]
    if missing:
        raise AlertRefused(
            _("Write the message in every language: %(langs)s.") % {"langs": ", ".join(missing)}
        )
    alert = Alert.objects.create(
        incident=incident,
        kind=kind,
        status=AlertStatus.AWAITING_APPROVAL,
        radius_m=radius_m,
        bodies=cleaned,
        audience=audience_count(incident, radius_m),
        composed_by=actor,
    )
    audit.record(actor=actor, action=AuditAction.ALERT_COMPOSED, target=alert, kind=kind)
    if not settings.RR_ALERT_SECOND_APPROVAL:
        return approve(actor=actor, alert=alert)
    return alert


@transaction.atomic
def approve(*, actor: Any, alert: Alert) -> Alert:
    from alerts.tasks import fan_out_alert

    control = _control_for_update()
    alert = (
        Alert.objects.select_for_update(of=("self",))
        .select_related("incident", "incident__neighbourhood")
        .get(pk=alert.pk)
    )
    if alert.status != AlertStatus.AWAITING_APPROVAL:
        raise AlertRefused(_("This alert is not waiting for approval."))
    if settings.RR_ALERT_SECOND_APPROVAL and actor.pk == alert.composed_by_id:
        raise AlertRefused(_("A second dispatcher must approve: you composed this alert."))
    _check_incident(alert.incident, AlertKind(alert.kind))
    _check_enabled(control.sending_enabled)
    _check_breaker(alert.incident, AlertKind(alert.kind))
    now = timezone.now()
    alert.status = AlertStatus.SENDING
    alert.approved_by = actor
    alert.approved_at = now
    alert.valid_until = now + timedelta(minutes=settings.RR_ALERT_VALIDITY_MINUTES)
    alert.save()
    audit.record(actor=actor, action=AuditAction.ALERT_APPROVED, target=alert)
    alert_id = alert.pk
    transaction.on_commit(lambda: fan_out_alert.enqueue(alert_id=alert_id))
    return alert


def _column(alias: str, model: Any, name: str) -> str:
    """``alias``.column of a model's field, quoted, for hand-written SQL."""
    field = model._meta.get_field(name)
    return f"{alias}.{connection.ops.quote_name(field.column)}"


def _audience_select(
    incident: Incident, radius_m: int, languages: list[str], batch: str
) -> tuple[str, list[Any]]:
    """The audience as a SELECT for ``queue_selected``: ``_audience_query``'s people,
    each in their language (or the first one written if theirs has no text), nearest
    first, each placed by the nearest of their cells.

    The cells are ranked here by distance from the incident, equal distances sharing a
    rank, so the database orders people by integers exactly as by the distances: a
    person's place is the rank of their nearest cell, then their id."""
    origin = incident.point
    cells = audience_cells(incident, radius_m)
    distance = {
        cell: distance_meters(origin, Point(*h3.cell_to_latlng(h3.int_to_str(cell))))
        for cell in cells
    }
    rank = {d: i for i, d in enumerate(sorted(set(distance.values())))}
    ranked, ranked_params = int_rows(
        "d", ("cell", "cell_rank"), [(c, rank[distance[c]]) for c in cells]
    )
    quote = connection.ops.quote_name
    subscribers, areas, opt_outs = (
        quote(model._meta.db_table) for model in (Subscriber, SubscriberCell, OptOut)
    )
    sub_id, sub_contact, sub_hash, sub_language, sub_status = (
        _column("s", Subscriber, name)
        for name in ("id", "contact", "phone_hash", "language", "status")
    )
    area_subscriber, area_cell = (
        _column("a", SubscriberCell, name) for name in ("subscriber", "h3_cell")
    )
    opt_out_hash = _column("o", OptOut, "phone_hash")
    fallback = next((code for code in settings.RR_LANGUAGES if code in languages), languages[0])
    known = ", ".join(["%s"] * len(languages))
    if connection.vendor == "postgresql":
        # Zero-padded to ten digits as f"{id:010d}" pads (lpad alone would cut).
        padded = (
            f"CASE WHEN {sub_id} < 10000000000 THEN lpad({sub_id}::text, 10, '0')"
            f" ELSE {sub_id}::text END"
        )
    else:
        padded = f"printf('%%010d', {sub_id})"
    # Names come from the models' metadata; every value is a parameter.
    # nosemgrep: django-raw-sql-formatted - names from the models' metadata only
    sql = f"""
        SELECT {sub_contact} AS contact_id,
               {sub_hash} AS recipient_hash,
               CASE WHEN {sub_language} IN ({known}) THEN {sub_language} ELSE %s END
                   AS language,
               row_number() OVER (ORDER BY n.cell_rank, {sub_id}) - 1 AS priority,
               %s || {padded} AS dedupe_key
        FROM (SELECT {area_subscriber} AS subscriber_id, MIN(d.cell_rank) AS cell_rank
              FROM {areas} AS a JOIN {ranked} ON {area_cell} = d.cell
              GROUP BY {area_subscriber}) AS n
        JOIN {subscribers} AS s ON {sub_id} = n.subscriber_id
        WHERE {sub_status} = %s
          AND NOT EXISTS (SELECT 1 FROM {opt_outs} AS o WHERE {opt_out_hash} = {sub_hash})
    """  # noqa: S608  # nosec B608
    params: list[Any] = [
        *languages,
        fallback,
        f"{batch}:",
        *ranked_params,
        SubscriberStatus.ACTIVE.value,
    ]
    return sql, params


def fan_out(alert_id: int) -> int:
    """Write the outbox rows of an approved alert. Safe to run again: rows that exist
    are skipped by their dedupe key. Returns how many rows the alert has."""
    alert = Alert.objects.select_related("incident", "incident__neighbourhood").get(pk=alert_id)
    if alert.status not in {AlertStatus.SENDING, AlertStatus.PAUSED}:
        return 0
    try:
        _check_incident(alert.incident, AlertKind(alert.kind))
    except AlertRefused:
        # Closed (or merged away) between approval and now: too late to send.
        cancel(actor=None, alert=alert)
        return 0
    batch = alert.batch
    with transaction.atomic():
        control = _control_for_update()
        current = Alert.objects.select_for_update().get(pk=alert.pk)
        if current.status not in {AlertStatus.SENDING, AlertStatus.PAUSED}:
            return 0
        if current.status == AlertStatus.SENDING and not control.sending_enabled:
            # Switched off since approval: the rows wait, held, like every other alert.
            current.status = AlertStatus.PAUSED
            current.save(update_fields=["status"])
            hold_batch(batch)
        status = OutboxStatus.QUEUED if current.status == AlertStatus.SENDING else OutboxStatus.HELD
        # In the rows' transaction: the retention purge keeps a live alert's texts, and
        # cannot see these before the rows that use them.
        for language, text in alert.bodies.items():
            OutboxBody.objects.get_or_create(
                batch=batch,
                language=language,
                defaults={"uuid": _body_uuid(alert, language), "text": text},
            )
        select, params = _audience_select(alert.incident, alert.radius_m, list(alert.bodies), batch)
        queue_selected(
            select,
            params,
            kind=OutboxKind.ALERT,
            batch=batch,
            status=status,
            valid_until=alert.valid_until,
        )
        total = OutboxMessage.objects.filter(batch=batch).count()
        Alert.objects.filter(pk=alert.pk).update(fanned_out_at=timezone.now(), audience=total)
    wake_sender()
    return total


def _body_uuid(alert: Alert, language: str) -> uuid.UUID:
    """Stable per alert and language, so a repeated fan-out reuses the same text."""
    return uuid.uuid5(alert.uuid, f"body:{language}")


@transaction.atomic
def pause(*, actor: Any, alert: Alert) -> Alert:
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if alert.status != AlertStatus.SENDING:
        raise AlertRefused(_("Only an alert that is sending can be paused."))
    hold_batch(alert.batch)
    alert.status = AlertStatus.PAUSED
    alert.save(update_fields=["status"])
    audit.record(actor=actor, action=AuditAction.ALERT_PAUSED, target=alert)
    return alert


@transaction.atomic
def resume(*, actor: Any, alert: Alert) -> Alert:
    control = _control_for_update()
    alert = (
        Alert.objects.select_for_update(of=("self",))
        .select_related("incident", "incident__neighbourhood")
        .get(pk=alert.pk)
    )
    if alert.status != AlertStatus.PAUSED:
        raise AlertRefused(_("Only a paused alert can be resumed."))
    _check_enabled(control.sending_enabled)
    _check_incident(alert.incident, AlertKind(alert.kind))
    release_batch(alert.batch)
    alert.status = AlertStatus.SENDING
    alert.save(update_fields=["status"])
    audit.record(actor=actor, action=AuditAction.ALERT_RESUMED, target=alert)
    wake_sender()
    return alert


@transaction.atomic
def cancel(*, actor: Any, alert: Alert) -> Alert:
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if alert.status not in {AlertStatus.AWAITING_APPROVAL, AlertStatus.SENDING, AlertStatus.PAUSED}:
        raise AlertRefused(_("This alert has finished."))
    cancel_batch(alert.batch)
    alert.status = AlertStatus.CANCELLED
    alert.finished_at = timezone.now()
    alert.save(update_fields=["status", "finished_at"])
    audit.record(actor=actor, action=AuditAction.ALERT_CANCELLED, target=alert)
    return alert


@transaction.atomic
def set_sending_enabled(*, actor: Any, enabled: bool) -> AlertControl:
    """The kill switch. Off: every alert in progress is paused (its rows held) and none
    can be approved or resumed. On: nothing resumes by itself."""
    control = _control_for_update()
    control.sending_enabled = enabled
    control.changed_at = timezone.now()
    control.changed_by = actor
    control.save()
    if not enabled:
        for alert in Alert.objects.select_for_update().filter(status=AlertStatus.SENDING):
            hold_batch(alert.batch)
            alert.status = AlertStatus.PAUSED
            alert.save(update_fields=["status"])
    audit.record(actor=actor, action=AuditAction.ALERTS_SWITCHED, target=control, enabled=enabled)
    return control


def on_incident_status(incident: Incident, previous: str, status: str) -> None:
    """Registered with incidents.actions: an incident closed while its alert is still
    waiting or going out makes the rest of that alert stale, so it is cancelled. Rumour
    control goes on (the rumour outlives the incident); a merge moves the alerts."""
    if status != IncidentStatus.CLOSED or incident.merged_into_id is not None:
        return
    live = Alert.objects.filter(
        incident=incident,
        kind=AlertKind.ALERT,
        status__in=[AlertStatus.AWAITING_APPROVAL, AlertStatus.SENDING, AlertStatus.PAUSED],
    )
    for alert in live:
        cancel(actor=None, alert=alert)


def on_incident_merge(source: Incident, target: Incident) -> None:
    """Registered with incidents.actions: alerts follow their incident into the one it
    was merged into."""
    Alert.objects.filter(incident=source).update(incident=target)


LOST_FAN_OUT_AFTER = timedelta(minutes=2)


def retry_lost_fan_outs() -> int:
    """Periodic: an approved alert whose fan-out never completed (its task was lost with
    a worker, or failed) is fanned out again; rows already written are kept."""
    from alerts.tasks import fan_out_alert

    lost = Alert.objects.filter(
        status__in=[AlertStatus.SENDING, AlertStatus.PAUSED],
        fanned_out_at__isnull=True,
        approved_at__lt=timezone.now() - LOST_FAN_OUT_AFTER,
    ).values_list("pk", flat=True)
    count = 0
    for alert_id in lost:
        fan_out_alert.enqueue(alert_id=alert_id)
        count += 1
    return count


@dataclass(frozen=True)
class Progress:
    total: int
    waiting: int
    sent: int
    delivered: int
    failed: int
    expired: int
    percent: int
    seconds_left: int

    @property
    def done(self) -> int:
        return self.total - self.waiting


def progress(alert: Alert) -> Progress:
    return progress_of([alert])[alert.pk]


def progress_of(alerts: list[Alert]) -> dict[int, Progress]:
    """Progress of several alerts in one query (the incident panel lists them all)."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    rows = (
        OutboxMessage.objects.filter(batch__in=[a.batch for a in alerts])
        .values_list("batch", "status")
        .annotate(n=Count("pk"))
        .values_list("batch", "status", "n")
    )
    for batch, status, n in rows:
        counts[batch][status] = n
    rate = max(settings.RR_SMS_RATE_PER_SECOND, 0.01)
    result = {}
    for alert in alerts:
        of = counts.get(alert.batch, {})
        waiting = sum(of.get(s, 0) for s in WAITING)
        total = sum(of.values())
        if total:
            percent = round(100 * (total - waiting) / total)
        else:
            percent = 100 if alert.fanned_out_at else 0
        result[alert.pk] = Progress(
            total=total,
            waiting=waiting,
            sent=of.get(OutboxStatus.SENT, 0),
            delivered=of.get(OutboxStatus.DELIVERED, 0),
            failed=sum(of.get(s, 0) for s in (OutboxStatus.FAILED, OutboxStatus.UNDELIVERED)),
            expired=sum(of.get(s, 0) for s in NOT_SENT),
            percent=percent,
            seconds_left=math.ceil(waiting / rate),
        )
    return result


WAITING = (OutboxStatus.QUEUED, OutboxStatus.SENDING, OutboxStatus.HELD)
NOT_SENT = (OutboxStatus.EXPIRED, OutboxStatus.SKIPPED, OutboxStatus.CANCELLED)


def finish_sent_alerts() -> int:
    """Periodic: an alert whose messages have all been handled is finished."""
    finished = 0
    for alert in Alert.objects.filter(status=AlertStatus.SENDING, fanned_out_at__isnull=False):
        if not OutboxMessage.objects.filter(batch=alert.batch, status__in=WAITING).exists():
            Alert.objects.filter(pk=alert.pk, status=AlertStatus.SENDING).update(
                status=AlertStatus.SENT, finished_at=timezone.now()
            )
            finished += 1
    return finished


# Templates


PLACEHOLDERS = ("{network}", "{place}", "{neighbourhood}", "{time}")


@transaction.atomic
def save_template(*, actor: Any, kind: AlertKind, language: str, body: str) -> AlertTemplate:
    if language not in settings.RR_LANGUAGES:
        raise AlertRefused(_("That language is not one this network uses."))
    text = _clean_text(body)
    if not text:
        raise AlertRefused(_("A template cannot be empty."))
    unknown = {
        part.split("}", 1)[0]
        for part in text.split("{")[1:]
        if "{" + part.split("}", 1)[0] + "}" not in PLACEHOLDERS
    }
    if unknown:
        raise AlertRefused(
            _("Unknown placeholder: %(names)s. Use %(known)s.")
            % {"names": ", ".join(sorted(unknown)), "known": " ".join(PLACEHOLDERS)}
        )
    template, _created = AlertTemplate.objects.update_or_create(
        kind=kind,
        language=language,
        defaults={"body": text, "updated_at": timezone.now(), "updated_by": actor},
    )
    audit.record(
        actor=actor,
        action=AuditAction.TEMPLATE_SAVED,
        target=template,
        kind=kind,
        language=language,
    )
    return template

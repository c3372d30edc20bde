"""Dispatch: responders, availability, offers, field reports, and deciding.

Every action that touches an incident takes the incidents lock first (like the actions
in incidents/actions.py), writes the timeline and an audit event, queues its SMS in the
outbox and publishes console events, all in one transaction.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from core import audit, hash_rotation, phones
from core.geo import Point
from core.locks import atomic_serialized, serialize
from core.models import AuditAction, Neighbourhood
from dispatch import links
from dispatch.matching import COARSE_RESOLUTION, FINE_RESOLUTION
from dispatch.models import (
    LANGUAGE_BITS,
    OPEN_OFFER_STATUSES,
    ROLE_BITS,
    EvidenceKind,
    FieldReport,
    Finding,
    ImportStatus,
    Offer,
    OfferStatus,
    Responder,
    ResponderImport,
    ResponderRole,
    Shift,
    Training,
    language_mask,
    role_mask,
)
from incidents import actions as incident_actions
from incidents import console
from incidents.console import INCIDENTS_LOCK
from incidents.models import ConsoleEventKind, Incident, IncidentStatus, TimelineEntry, TimelineKind
from messaging.models import OutboxKind
from messaging.outbox import expire_queued, queue_sms

if TYPE_CHECKING:
    from dispatch.evidence import SealedEvidence

ActionRefused = incident_actions.ActionRefused


def responder_language(responder: Responder) -> str:
    """The first of the responder's languages that the network speaks."""
    for code in responder.language_list:
        if code in settings.RR_LANGUAGES:
            return code
    return str(settings.RR_LANGUAGES[0])


# Responders


@dataclass
class ResponderData:
    name: str
    phone: str
    roles: list[str]
    languages: list[str]
    home_neighbourhood: Neighbourhood | None = None
    notes: str = ""
    active: bool = True


def _relocate(responder: Responder) -> None:
    """Where matching looks for the responder: the location they shared, else the middle
    of their home neighbourhood, else nowhere (they cannot be matched)."""
    point: Point | None = None
    if responder.shared_lat is not None and responder.shared_lng is not None:
        point = Point(responder.shared_lat, responder.shared_lng)
    elif responder.home_neighbourhood is not None:
        hood = responder.home_neighbourhood
        point = Point(hood.label_lat, hood.label_lng)
    if point is None:
        responder.lat = responder.lng = responder.h3_cell = responder.h3_coarse = None
        return
    responder.lat, responder.lng = point.lat, point.lng
    responder.h3_cell = point.cell(FINE_RESOLUTION)
    responder.h3_coarse = point.cell(COARSE_RESOLUTION)


def _check(data: ResponderData) -> str:
    if not data.name.strip():
        raise ActionRefused(_("A name is required."))
    try:
        e164 = phones.normalize(data.phone)
    except phones.InvalidPhoneNumber as exc:
        raise ActionRefused(_("That does not look like a phone number.")) from exc
    if not data.roles or any(r not in ROLE_BITS for r in data.roles):
        raise ActionRefused(_("Choose at least one role."))
    if not data.languages or any(code not in LANGUAGE_BITS for code in data.languages):
        raise ActionRefused(_("Choose at least one language."))
    return e164


@transaction.atomic
def save_responder(
    *, actor: Any, data: ResponderData, responder: Responder | None = None
) -> Responder:
    e164 = _check(data)
    hash_rotation.bring_forward(e164)  # a no-op unless RR_HASH_KEY is rotating
    phone_hash = phones.phone_hash(e164)
    clash = Responder.objects.filter(phone_hash=phone_hash)
    if responder is not None:
        clash = clash.exclude(pk=responder.pk)
    if clash.exists():
        raise ActionRefused(_("Another responder already has this phone number."))
    created = responder is None
    responder = responder or Responder()
    responder.name = data.name.strip()
    responder.phone = e164
    responder.phone_hash = phone_hash
    responder.roles = role_mask(data.roles)
    responder.languages = language_mask(data.languages)
    responder.home_neighbourhood = data.home_neighbourhood
    responder.notes = data.notes.strip()
    if not data.active:
        _make_unavailable(responder)
    responder.active = data.active
    _relocate(responder)
    responder.save()
    audit.record(
        actor=actor,
        action=AuditAction.RESPONDER_SAVED,
        target=responder,
        created=created,
        active=responder.active,
    )
    return responder


def _make_unavailable(responder: Responder) -> None:
    responder.available = False
    responder.available_changed_at = timezone.now()
    # A shared location is kept only while the responder is available.
    responder.shared_lat = responder.shared_lng = responder.shared_at = None


@transaction.atomic
def set_availability(*, responder: Responder, available: bool) -> Responder:
    responder = Responder.objects.select_for_update().get(pk=responder.pk)
    if not responder.active:
        raise ActionRefused(_("This responder is not active."))
    now = timezone.now()
    if available:
        responder.available = True
        responder.available_changed_at = now
        responder.off_until = None
    else:
        _make_unavailable(responder)
        # OFF during a shift holds until that shift ends.
        current = responder.shifts.filter(starts_at__lte=now, ends_at__gt=now).order_by("-ends_at")
        ending = current.values_list("ends_at", flat=True).first()
        responder.off_until = ending
    _relocate(responder)
    responder.save()
    audit.record(
        actor=None, action=AuditAction.RESPONDER_AVAILABILITY, target=responder, available=available
    )
    return responder


@transaction.atomic
def share_location(*, responder: Responder, point: Point) -> Responder:
    responder = Responder.objects.select_for_update().get(pk=responder.pk)
    if not responder.available:
        raise ActionRefused(_("Turn availability on to share your location."))
    # Kept to about 100 m: enough to find the nearest responders, no more.
    responder.shared_lat = round(point.lat, 3)
    responder.shared_lng = round(point.lng, 3)
    responder.shared_at = timezone.now()
    _relocate(responder)
    responder.save()
    return responder


def add_training(
    *, actor: Any, responder: Responder, name: str, completed_on: Any, expires_on: Any = None
) -> Training:
    if not name.strip():
        raise ActionRefused(_("Name the training."))
    if expires_on is not None and expires_on < completed_on:
        raise ActionRefused(_("A training cannot expire before it was completed."))
    return Training.objects.create(
        responder=responder,
        name=name.strip()[:120],
        completed_on=completed_on,
        expires_on=expires_on,
    )


def check_shift(starts_at: datetime, ends_at: datetime) -> None:
    """The rule for every shift, a responder's or a dispatcher's."""
    if ends_at <= starts_at:
        raise ActionRefused(_("A shift must end after it starts."))
    if ends_at - starts_at > timedelta(hours=24):
        raise ActionRefused(_("A shift can last at most 24 hours."))


def add_shift(*, actor: Any, responder: Responder, starts_at: Any, ends_at: Any) -> Shift:
    check_shift(starts_at, ends_at)
    return Shift.objects.create(responder=responder, starts_at=starts_at, ends_at=ends_at)


# Import from CSV

CSV_COLUMNS = ("name", "phone", "roles", "languages", "neighbourhood", "notes")
MAX_IMPORT_ROWS = 5000


@dataclass
class RowProblem:
    line: int
    reason: str


@dataclass
class CheckedRows:
    rows: list[ResponderData] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


def _split(value: str) -> list[str]:
    return [
        part.strip().lower()
        for part in value.replace(";", ",").replace("|", ",").split(",")
        if part.strip()
    ]


def start_import(*, actor: Any, content: str) -> ResponderImport:
    from dispatch.tasks import run_responder_import

    job = ResponderImport.objects.create(created_by=actor, content=content)
    transaction.on_commit(lambda: run_responder_import.enqueue(job_id=job.pk))
    return job


def _progress(job: ResponderImport, **fields: Any) -> None:
    """Save progress at once (outside any transaction), so the page can show it.
    Finishing also empties the uploaded content: names and numbers are not kept."""
    if "content" in fields:
        for name, value in fields.items():
            setattr(job, name, value)
        job.save(update_fields=list(fields))
        return
    ResponderImport.objects.filter(pk=job.pk).update(**fields)


def run_import(job_id: int) -> ResponderImport:
    """Check every row first (progress is visible while it runs), then write all rows in
    one transaction, or none if any row is wrong."""
    job = ResponderImport.objects.get(pk=job_id)
    if job.finished:
        return job
    try:
        reader = csv.DictReader(io.StringIO(job.content))
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        missing = [c for c in ("name", "phone", "roles", "languages") if c not in header]
        if missing:
            _progress(
                job,
                status=ImportStatus.REJECTED,
                content="",
                errors=[
                    {
                        "line": 1,
                        "reason": _("Missing columns: %(columns)s.")
                        % {"columns": ", ".join(missing)},
                    }
                ],
            )
            return ResponderImport.objects.get(pk=job.pk)
        # (line where the row starts, row): a quoted field may span several lines.
        records = []
        line = reader.line_num + 1
        for row in reader:
            records.append((line, row))
            line = reader.line_num + 1
        if len(records) > MAX_IMPORT_ROWS:
            _progress(
                job,
                status=ImportStatus.REJECTED,
                content="",
                errors=[
                    {
                        "line": 1,
                        "reason": _("At most %(n)d rows per file.") % {"n": MAX_IMPORT_ROWS},
                    }
                ],
            )
            return ResponderImport.objects.get(pk=job.pk)
        _progress(job, status=ImportStatus.CHECKING, total_rows=len(records))
        checked = _check_rows(job, records)
        if checked.problems:
            _progress(
                job,
                status=ImportStatus.REJECTED,
                content="",
                errors=[{"line": p.line, "reason": p.reason} for p in checked.problems],
            )
            return ResponderImport.objects.get(pk=job.pk)
        _progress(job, status=ImportStatus.IMPORTING)
        with transaction.atomic():
            for data in checked.rows:
                save_responder(actor=job.created_by, data=data)
        _progress(job, status=ImportStatus.DONE, imported=len(checked.rows), content="")
    except (csv.Error, UnicodeError, ActionRefused, IntegrityError) as exc:
        _progress(
            job, status=ImportStatus.FAILED, content="", errors=[{"line": 0, "reason": str(exc)}]
        )
    except Exception:
        # Whatever went wrong, the uploaded names and numbers must not stay behind.
        _progress(
            job,
            status=ImportStatus.FAILED,
            content="",
            errors=[{"line": 0, "reason": str(_("The import failed; nothing was imported."))}],
        )
        raise
    return ResponderImport.objects.get(pk=job.pk)


def _check_rows(
    job: ResponderImport, records: list[tuple[int, dict[str, str | None]]]
) -> CheckedRows:
    hoods = {h.slug: h for h in Neighbourhood.objects.all()}
    hoods.update({h.name.lower(): h for h in hoods.values()})
    existing = set(Responder.objects.values_list("phone_hash", flat=True))
    seen: dict[str, int] = {}
    result = CheckedRows()
    roles_by_name = {r.value: r.value for r in ResponderRole}
    roles_by_name.update({str(r.label).lower(): r.value for r in ResponderRole})
    for index, (line, raw) in enumerate(records):
        record = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k}
        problems = []
        try:
            e164 = phones.normalize(record.get("phone", ""))
        except phones.InvalidPhoneNumber:
            problems.append(_("the phone number is not valid"))
            e164 = ""
        if e164:
            phone_hash = phones.phone_hash(e164)
            # While RR_HASH_KEY rotates, a responder may still be under the old key.
            if phone_hash in existing or existing.intersection(phones.previous_phone_hashes(e164)):
                problems.append(_("a responder with this phone number already exists"))
            elif phone_hash in seen:
                problems.append(
                    _("the same phone number is on line %(line)d") % {"line": seen[phone_hash]}
                )
            seen.setdefault(phone_hash, line)
        if not record.get("name"):
            problems.append(_("the name is empty"))
        roles = [roles_by_name.get(r) for r in _split(record.get("roles", ""))]
        if not roles or None in roles:
            problems.append(_("roles must be among: %(roles)s") % {"roles": ", ".join(ROLE_BITS)})
        languages = _split(record.get("languages", ""))
        if not languages or any(code not in LANGUAGE_BITS for code in languages):
            problems.append(_("languages must be codes such as en, es"))
        hood_name = record.get("neighbourhood", "").lower()
        hood = hoods.get(hood_name) if hood_name else None
        if hood_name and hood is None:
            problems.append(
                _("unknown neighbourhood %(name)r") % {"name": record.get("neighbourhood")}
            )
        if problems:
            result.problems.append(RowProblem(line, "; ".join(str(p) for p in problems)))
        else:
            result.rows.append(
                ResponderData(
                    name=record["name"],
                    phone=e164,
                    roles=[r for r in roles if r],
                    languages=languages,
                    home_neighbourhood=hood,
                    notes=record.get("notes", ""),
                )
            )
        if index % 50 == 0 or index == len(records) - 1:
            _progress(job, processed_rows=index + 1)
    return result


# Offers


CODE_REUSE_AFTER = timedelta(days=7)


def _new_code(responder: Responder) -> str:
    """Four digits no open offer of this responder uses, nor any offer of the past
    week, so a late reply to an old offer cannot land on a new one."""
    recent = Q(status__in=OPEN_OFFER_STATUSES) | Q(
        offered_at__gte=timezone.now() - CODE_REUSE_AFTER
    )
    taken = set(
        Offer.objects.filter(responder=responder).filter(recent).values_list("code", flat=True)
    )
    while True:
        code = f"{secrets.randbelow(9000) + 1000}"
        if code not in taken:
            return code


def _offer_text(offer: Offer, incident: Incident, summary: str) -> str:
    where = incident.location_text or (
        incident.neighbourhood.name if incident.neighbourhood else ""
    )
    hood = incident.neighbourhood.name if incident.neighbourhood else ""
    place = f"{where} ({hood})" if hood and hood != where else where
    return _(
        "%(network)s: please verify a report near %(place)s: %(what)s Reply YES %(code)s to "
        "go, NO %(code)s to pass."
    ) % {
        "network": settings.RR_NETWORK_NAME,
        "place": place or _("the location on your page"),
        "what": ((summary[:90] + "…") if len(summary) > 90 else summary.rstrip(" .!?")) + ".",
        "code": offer.code,
    }


def _timeline(incident: Incident, kind: TimelineKind, actor: Any = None, **fields: Any) -> None:
    TimelineEntry.objects.create(
        incident=incident,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        kind=kind,
        **fields,
    )


def _touch(incident: Incident, **fields: Any) -> None:
    fields["updated_at"] = timezone.now()
    Incident.objects.filter(pk=incident.pk).update(**fields)


def _summary(incident: Incident) -> str:
    from incidents.selectors import open_incidents, with_summaries

    rows = with_summaries(open_incidents().filter(pk=incident.pk))
    return rows[0].summary if rows else ""  # type: ignore[attr-defined]


@atomic_serialized(INCIDENTS_LOCK)
def send_offers(*, actor: Any, incident: Incident, responders: list[Responder]) -> list[Offer]:
    """Offer the incident to these responders by SMS."""
    incident = Incident.objects.select_related("neighbourhood").get(pk=incident.pk)
    if incident.status not in {
        IncidentStatus.NEW,
        IncidentStatus.VERIFYING,
        IncidentStatus.UNVERIFIED,
    }:
        raise ActionRefused(_("Offers go out only for incidents that still need verifying."))
    if not responders:
        raise ActionRefused(_("Choose at least one responder."))
    already = set(Offer.objects.filter(incident=incident).values_list("responder_id", flat=True))
    summary = _summary(incident)
    point = incident.point
    offers = []
    from dispatch.matching import available_responders

    reachable = set(
        available_responders()
        .filter(pk__in=[r.pk for r in responders])
        .values_list("pk", flat=True)
    )
    for responder in responders:
        if responder.pk in already:
            continue
        if not responder.active:
            raise ActionRefused(_("An inactive responder cannot be sent."))
        if responder.pk not in reachable:
            raise ActionRefused(
                _("%(name)s is no longer available. Reload the page for the current list.")
                % {"name": responder.name}
            )
        spot = responder.point
        offer = Offer.objects.create(
            incident=incident,
            responder=responder,
            code=_new_code(responder),
            offered_by=actor if getattr(actor, "is_authenticated", False) else None,
            distance_m=round(_distance(point, spot)) if spot else None,
        )
        language = responder_language(responder)
        with translation.override(language):
            offer.sms = queue_sms(
                to=responder.phone,
                body=_offer_text(offer, incident, summary),
                language=language,
                kind=OutboxKind.OFFER,
                valid_until=timezone.now() + OFFER_SMS_VALIDITY,
            )
        offer.save(update_fields=["sms"])
        offers.append(offer)
    if not offers:
        raise ActionRefused(_("Those responders already have this offer."))
    now = timezone.now()
    updates: dict[str, Any] = {"escalated_at": None}
    if incident.first_offer_at is None:
        updates["first_offer_at"] = now
    _touch(incident, **updates)
    _timeline(incident, TimelineKind.OFFERED, actor, to_value=str(len(offers)))
    if incident.status in {IncidentStatus.NEW, IncidentStatus.UNVERIFIED}:
        incident_actions.change_status(
            actor=actor,
            incident=incident,
            status=IncidentStatus.VERIFYING,
            reason=_("Responders contacted."),
        )
    audit.record(actor=actor, action=AuditAction.OFFERS_SENT, target=incident, count=len(offers))
    console.publish(ConsoleEventKind.INCIDENT, incident.uuid)
    return offers


# An offer SMS that could not go out within this time is dropped: the console will
# have moved on (escalated, covered) by then.
OFFER_SMS_VALIDITY = timedelta(minutes=30)


def _distance(a: Point, b: Point) -> float:
    from core.geo import distance_meters

    return distance_meters(a, b)


@atomic_serialized(INCIDENTS_LOCK)
def set_verifiers_needed(*, actor: Any, incident: Incident, count: int) -> Incident:
    if not 1 <= count <= 10:
        raise ActionRefused(_("Between 1 and 10 verifiers."))
    _touch(incident, verifiers_needed=count)
    incident.refresh_from_db()
    _cover_if_enough(incident)
    console.publish(ConsoleEventKind.INCIDENT, incident.uuid)
    return incident


def _cover_if_enough(incident: Incident) -> None:
    """Once enough responders accepted, tell the others they are not needed."""
    accepted = Offer.objects.filter(incident=incident, status=OfferStatus.ACCEPTED).count()
    if accepted < incident.verifiers_needed:
        return
    _stand_down(incident, OfferStatus.COVERED)


def _stand_down(incident: Incident, status: OfferStatus) -> None:
    """Offers nobody answered are no longer needed: withdraw the SMS that have not gone
    out yet, and tell those who got one."""
    waiting = list(
        Offer.objects.filter(incident=incident, status=OfferStatus.OFFERED).select_related(
            "responder", "sms"
        )
    )
    for offer in waiting:
        offer.status = status
        offer.save(update_fields=["status"])
        if offer.sms is not None and expire_queued([offer.sms]):
            continue  # the offer never reached them
        language = responder_language(offer.responder)
        with translation.override(language):
            queue_sms(
                to=offer.responder.phone,
                body=_("%(network)s: offer %(code)s is covered, thank you. No need to go.")
                % {"network": settings.RR_NETWORK_NAME, "code": offer.code},
                language=language,
                kind=OutboxKind.NOTICE,
                valid_until=timezone.now() + OFFER_SMS_VALIDITY,
            )


@dataclass(frozen=True)
class Answer:
    reply: str
    changed: bool


@atomic_serialized(INCIDENTS_LOCK)
def answer_offer(*, offer: Offer, accept: bool) -> Answer:
    """A responder's YES or NO. Repeats and late answers change nothing."""
    offer = Offer.objects.select_related("responder", "incident").get(pk=offer.pk)
    incident = offer.incident
    language = responder_language(offer.responder)
    with translation.override(language):
        if offer.status == OfferStatus.ACCEPTED and accept:
            return Answer(
                _("You already accepted offer %(code)s. Report here: %(link)s")
                % {"code": offer.code, "link": links.offer_link(offer)},
                changed=False,
            )
        if offer.status == OfferStatus.ACCEPTED and not accept:
            return _withdraw(offer)
        if offer.status == OfferStatus.OFFERED and incident.status not in {
            IncidentStatus.NEW,
            IncidentStatus.VERIFYING,
            IncidentStatus.UNVERIFIED,
        }:
            offer.status = OfferStatus.COVERED
            offer.save(update_fields=["status"])
            return Answer(
                _("Offer %(code)s is no longer needed: the report was already checked. Thank you.")
                % {"code": offer.code},
                changed=True,
            )
        if offer.status != OfferStatus.OFFERED:
            return Answer(
                _("Offer %(code)s is no longer open (%(status)s). Nothing changed.")
                % {"code": offer.code, "status": offer.get_status_display()},
                changed=False,
            )
        now = timezone.now()
        offer.status = OfferStatus.ACCEPTED if accept else OfferStatus.DECLINED
        offer.answered_at = now
        offer.save(update_fields=["status", "answered_at"])
        if accept:
            if incident.first_accepted_at is None:
                _touch(incident, first_accepted_at=now)
            else:
                _touch(incident)
            _timeline(incident, TimelineKind.ACCEPTED, reason=f"{offer.code}")
            incident.refresh_from_db()
            _cover_if_enough(incident)
            reply = _(
                "Thank you. Go carefully; observe and document, do not intervene. Report "
                "what you see: %(link)s or reply CONFIRMED %(code)s / NOT SEEN %(code)s."
            ) % {"link": links.offer_link(offer), "code": offer.code}
        else:
            _touch(incident)
            _timeline(incident, TimelineKind.DECLINED, reason=f"{offer.code}")
            reply = _("Thank you, offer %(code)s passed.") % {"code": offer.code}
        console.publish(ConsoleEventKind.INCIDENT, incident.uuid)
        return Answer(reply, changed=True)


def _withdraw(offer: Offer) -> Answer:
    """A responder who accepted can no longer go: the incident needs someone else."""
    offer.status = OfferStatus.WITHDRAWN
    offer.answered_at = timezone.now()
    offer.save(update_fields=["status", "answered_at"])
    _touch(offer.incident, escalated_at=None)
    _timeline(offer.incident, TimelineKind.DECLINED, reason=offer.code)
    console.publish(ConsoleEventKind.INCIDENT, offer.incident.uuid)
    return Answer(
        _("Understood, you are no longer going to %(code)s. Thank you.") % {"code": offer.code},
        changed=True,
    )


@atomic_serialized(INCIDENTS_LOCK)
def withdraw(*, offer: Offer) -> Answer:
    offer = Offer.objects.select_related("responder", "incident").get(pk=offer.pk)
    if offer.status != OfferStatus.ACCEPTED:
        raise ActionRefused(_("Only an accepted offer can be withdrawn."))
    with translation.override(responder_language(offer.responder)):
        return _withdraw(offer)


@atomic_serialized(INCIDENTS_LOCK)
def mark_arrived(*, offer: Offer) -> Offer:
    offer = Offer.objects.select_related("incident").get(pk=offer.pk)
    if offer.status != OfferStatus.ACCEPTED:
        raise ActionRefused(_("Accept the offer first."))
    if offer.arrived_at is None:
        now = timezone.now()
        offer.arrived_at = now
        offer.save(update_fields=["arrived_at"])
        fields: dict[str, Any] = {}
        if offer.incident.first_arrived_at is None:
            fields["first_arrived_at"] = now
        _touch(offer.incident, **fields)
        _timeline(offer.incident, TimelineKind.ARRIVED, reason=offer.code)
        console.publish(ConsoleEventKind.INCIDENT, offer.incident.uuid)
    return offer


@dataclass
class FieldData:
    finding: str = ""
    salute: dict[str, str] = field(default_factory=dict)
    agencies: str = ""
    officers: int | None = None
    vehicles: int | None = None
    detentions: int | None = None
    notes: str = ""


SALUTE = ("size", "activity", "location", "uniform", "time", "equipment")


@dataclass(frozen=True)
class StoredUpload:
    kind: EvidenceKind
    content_type: str
    original: bytes
    shared: bytes


@atomic_serialized(INCIDENTS_LOCK)
def save_field_report(
    *, offer: Offer, data: FieldData, uploads: Sequence[SealedEvidence] = ()
) -> FieldReport:
    """Create or update the responder's field report, with any new evidence (already
    sealed by dispatch.evidence.seal, outside this transaction and its lock)."""
    from dispatch import evidence as evidence_store

    offer = Offer.objects.select_related("incident", "responder").get(pk=offer.pk)
    if offer.status != OfferStatus.ACCEPTED:
        raise ActionRefused(_("Only a responder who accepted can report."))
    if data.finding and data.finding not in Finding.values:
        raise ActionRefused(_("Unknown finding."))
    report, created = FieldReport.objects.get_or_create(offer=offer)
    previous = report.finding
    if data.finding:
        report.finding = data.finding
    for name in SALUTE:
        value = data.salute.get(name, "")
        if value:
            setattr(report, f"salute_{name}", value)
    for name in ("agencies", "notes"):
        value = getattr(data, name)
        if value:
            setattr(report, name, value)
    for name in ("officers", "vehicles", "detentions"):
        value = getattr(data, name)
        if value is not None:
            setattr(report, name, value)
    report.updated_at = timezone.now()
    report.save()
    for sealed in uploads:
        evidence_store.record(report=report, responder=offer.responder, sealed=sealed)
    if offer.arrived_at is None and (data.finding or uploads):
        mark_arrived(offer=offer)
    if created or report.finding != previous or uploads:
        _timeline(
            offer.incident,
            TimelineKind.FIELD_REPORT,
            to_value=report.finding,
            reason=offer.code,
        )
    _touch(offer.incident)
    audit.record(
        actor=None,
        action=AuditAction.FIELD_REPORT_SAVED,
        target=report,
        finding=report.finding,
        uploads=len(uploads),
    )
    console.publish(ConsoleEventKind.INCIDENT, offer.incident.uuid)
    return report


def confirmations(incident: Incident) -> int:
    """Independent confirmations: distinct responders who reported it verified."""
    return (
        FieldReport.objects.filter(offer__incident=incident, finding=Finding.VERIFIED)
        .values("offer__responder")
        .distinct()
        .count()
    )


def verification_gate(incident: Incident) -> str | None:
    """Registered with incidents.actions: what stops a dispatcher marking it verified."""
    needed = settings.RR_CONFIRMATIONS_REQUIRED
    have = confirmations(incident)
    if have < needed:
        return _(
            "Verifying needs %(needed)d independent confirmation(s) from responders on the "
            "scene; this incident has %(have)d."
        ) % {"needed": needed, "have": have}
    return None


def on_status_change(incident: Incident, previous: str, status: str) -> None:
    """Registered with incidents.actions. A decision makes unanswered offers unneeded;
    closing also ends the accepted ones, which frees their codes."""
    if status in {IncidentStatus.VERIFIED, IncidentStatus.FALSE, IncidentStatus.CLOSED}:
        _stand_down(
            incident,
            OfferStatus.CANCELLED if status == IncidentStatus.CLOSED else OfferStatus.COVERED,
        )
    if status == IncidentStatus.CLOSED:
        Offer.objects.filter(incident=incident, status=OfferStatus.ACCEPTED).update(
            status=OfferStatus.DONE
        )


def on_merge(source: Incident, target: Incident) -> None:
    """Registered with incidents.actions: offers follow their reports into the incident
    they were merged into, unless that responder already has an offer there."""
    there = set(Offer.objects.filter(incident=target).values_list("responder_id", flat=True))
    Offer.objects.filter(incident=source).exclude(responder_id__in=there).update(incident=target)


SHARED_LOCATION_HOURS = 8


def forget_old_locations(*, now: Any = None) -> int:
    """Periodic: a shared location older than SHARED_LOCATION_HOURS is forgotten."""
    moment = now or timezone.now()
    stale = Responder.objects.filter(
        shared_at__lt=moment - timedelta(hours=SHARED_LOCATION_HOURS)
    ).select_related("home_neighbourhood")
    count = 0
    for responder in stale:
        responder.shared_lat = responder.shared_lng = responder.shared_at = None
        _relocate(responder)
        responder.save(
            update_fields=[
                "shared_lat",
                "shared_lng",
                "shared_at",
                "lat",
                "lng",
                "h3_cell",
                "h3_coarse",
            ]
        )
        count += 1
    return count


def announce_escalations(*, now: Any = None) -> int:
    """Periodic: when offers have gone unanswered for RR_OFFER_ESCALATE_MINUTES and not
    enough responders accepted, say so once on the timeline and the live console."""
    from dispatch.selectors import accepted_count, last_offer_at

    moment = now or timezone.now()
    cutoff = moment - timedelta(minutes=settings.RR_OFFER_ESCALATE_MINUTES)
    due = list(
        Incident.objects.filter(
            status__in=[IncidentStatus.NEW, IncidentStatus.VERIFYING, IncidentStatus.UNVERIFIED],
            escalated_at__isnull=True,
            first_offer_at__isnull=False,
        )
        .annotate(accepted=accepted_count(), last_offer=last_offer_at())
        .filter(last_offer__lt=cutoff)
        .values_list("pk", "accepted", "verifiers_needed")[:200]
    )
    announced = 0
    for pk, accepted, needed in due:
        if accepted >= needed:
            continue
        with transaction.atomic():
            serialize(INCIDENTS_LOCK)
            incident = Incident.objects.get(pk=pk)
            Incident.objects.filter(pk=pk).update(escalated_at=moment)
            _timeline(incident, TimelineKind.ESCALATED, to_value=f"{accepted}/{needed}")
            console.publish(ConsoleEventKind.INCIDENT, incident.uuid)
        announced += 1
    return announced


def close_idle_incidents(*, now: Any = None) -> int:
    """Close open incidents with no activity for RR_INCIDENT_IDLE_CLOSE_HOURS."""
    moment = now or timezone.now()
    cutoff = moment - timedelta(hours=settings.RR_INCIDENT_IDLE_CLOSE_HOURS)
    idle = list(
        Incident.objects.exclude(status=IncidentStatus.CLOSED)
        .filter(updated_at__lt=cutoff)
        .values_list("pk", flat=True)[:200]
    )
    for pk in idle:
        incident = Incident.objects.get(pk=pk)
        try:
            incident_actions.change_status(
                actor=None,
                incident=incident,
                status=IncidentStatus.CLOSED,
                reason=_("No activity for %(hours)d hours.")
                % {"hours": settings.RR_INCIDENT_IDLE_CLOSE_HOURS},
            )
        except incident_actions.ActionRefused:
            continue
    return len(idle)


def open_offer_for(phone_hash: str, code: str) -> Offer | None:
    return (
        Offer.objects.filter(responder__phone_hash=phone_hash, code=code)
        .filter(Q(status__in=OPEN_OFFER_STATUSES))
        .select_related("responder", "incident")
        .first()
    )


def any_offer_for(phone_hash: str, code: str) -> Offer | None:
    return (
        Offer.objects.filter(responder__phone_hash=phone_hash, code=code)
        .order_by("-offered_at")
        .select_related("responder", "incident")
        .first()
    )


def lock_incidents() -> None:
    serialize(INCIDENTS_LOCK)

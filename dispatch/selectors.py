"""Reads for dispatch: the incident panel, the console's response column, responders."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import (
    Count,
    IntegerField,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils import timezone

from dispatch import actions
from dispatch.matching import Candidate, nearest_responders
from dispatch.models import (
    LANGUAGE_BITS,
    Evidence,
    FieldReport,
    Offer,
    OfferStatus,
    Responder,
    ResponderRole,
)
from incidents.models import Incident, IncidentStatus

NEEDS_VERIFYING = (IncidentStatus.NEW, IncidentStatus.VERIFYING, IncidentStatus.UNVERIFIED)


def _offer_count(status: OfferStatus) -> Any:
    counted = (
        Offer.objects.filter(incident=OuterRef("pk"), status=status)
        .order_by()
        .values("incident")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def offered_count() -> Any:
    return _offer_count(OfferStatus.OFFERED)


def accepted_count() -> Any:
    return _offer_count(OfferStatus.ACCEPTED)


def last_offer_at() -> Any:
    latest = (
        Offer.objects.filter(incident=OuterRef("pk"))
        .order_by()
        .values("incident")
        .annotate(at=Max("offered_at"))
        .values("at")
    )
    return Subquery(latest)


def escalation_due(incident: Incident, *, accepted: int, last_offer: Any) -> bool:
    """Offers went out, not enough accepted, and the last ones are older than the
    escalation time: the console proposes the next ring of responders."""
    if incident.status not in NEEDS_VERIFYING or last_offer is None:
        return False
    if accepted >= incident.verifiers_needed:
        return False
    return bool(last_offer < timezone.now() - timedelta(minutes=settings.RR_OFFER_ESCALATE_MINUTES))


def incident_language(incident: Incident) -> str:
    """The language of the incident's first report: responders who speak it go first."""
    first = incident.reports.order_by("observed_at").values_list("language", flat=True).first()
    return first or str(settings.RR_LANGUAGES[0])


def panel_context(request: HttpRequest, incident: Incident) -> dict[str, Any]:
    """Everything the dispatch panel on the incident page shows."""
    offers = list(
        Offer.objects.filter(incident=incident)
        .select_related("responder")
        .prefetch_related(
            Prefetch(
                "field_report",
                queryset=FieldReport.objects.prefetch_related(
                    Prefetch("evidence", queryset=Evidence.objects.order_by("uploaded_at"))
                ),
            )
        )
        .order_by("offered_at", "pk")
    )
    accepted = sum(1 for o in offers if o.status == OfferStatus.ACCEPTED)
    last_offer = max((o.offered_at for o in offers), default=None)
    role = request.GET.get("role") or ResponderRole.VERIFIER
    if role not in ResponderRole.values:
        role = ResponderRole.VERIFIER
    language = request.GET.get("language") or incident_language(incident)
    if language not in LANGUAGE_BITS:
        language = incident_language(incident)
    candidates: list[Candidate] = []
    if incident.status in NEEDS_VERIFYING:
        candidates = nearest_responders(
            incident.point,
            role=role,
            language=language,
            limit=8,
            exclude=[o.responder_id for o in offers],
        )
    field_reports = [o.field_report for o in offers if hasattr(o, "field_report")]
    return {
        "offers": offers,
        "accepted": accepted,
        "candidates": candidates,
        "role": role,
        "language": language,
        "roles": ResponderRole.choices,
        "languages": [(code, code.upper()) for code in LANGUAGE_BITS],
        "escalate": escalation_due(incident, accepted=accepted, last_offer=last_offer),
        "escalate_minutes": settings.RR_OFFER_ESCALATE_MINUTES,
        "field_reports": field_reports,
        "confirmations": actions.confirmations(incident),
        "confirmations_required": settings.RR_CONFIRMATIONS_REQUIRED,
        "can_offer": incident.status in NEEDS_VERIFYING,
    }


def responders(*, role: str = "", active: str = "") -> QuerySet[Responder]:
    rows = Responder.objects.select_related("home_neighbourhood").annotate(
        open_offers=Count("offers", filter=Q(offers__status=OfferStatus.ACCEPTED))
    )
    if role in ResponderRole.values:
        from django.db.models import F

        from dispatch.models import ROLE_BITS

        rows = rows.annotate(role_hit=F("roles").bitand(ROLE_BITS[role])).filter(role_hit__gt=0)
    if active == "yes":
        rows = rows.filter(active=True)
    elif active == "no":
        rows = rows.filter(active=False)
    return rows.order_by("-active", "-available", "created_at", "pk")


def is_active_responder_phone(phone_hash: str) -> bool:
    """Responders' texts are never throttled as a flood (intake.throttle)."""
    return Responder.objects.filter(phone_hash=phone_hash, active=True).exists()

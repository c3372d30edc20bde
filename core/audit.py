"""Writing audit events from actions: one per transaction, never with content."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import models
from django.db.models import QuerySet
from django.utils import timezone

from core.models import AuditAction, AuditEvent


def record(
    *,
    actor: Any,
    action: AuditAction,
    target: models.Model,
    **detail: str | int | float | bool | None,
) -> AuditEvent:
    user = actor if getattr(actor, "is_authenticated", False) else None
    target_id = getattr(target, "uuid", None) or target.pk
    return AuditEvent.objects.create(
        actor=user,
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target_id),
        detail=detail,
    )


def search(
    *,
    actor: str = "",
    action: str = "",
    target_type: str = "",
    target_id: str = "",
    since: date | None = None,
    until: date | None = None,
) -> QuerySet[AuditEvent]:
    """Audit events matching the filters, newest first, each with its actor loaded.
    Dates are whole days in the deployment's time zone; ``until`` is included."""
    events = AuditEvent.objects.select_related("actor").order_by("-at", "-pk")
    if actor:
        events = events.filter(actor__username=actor)
    if action:
        events = events.filter(action=action)
    if target_type:
        events = events.filter(target_type=target_type)
    if target_id:
        events = events.filter(target_id=target_id)
    if since:
        events = events.filter(at__gte=_start_of(since))
    if until:
        events = events.filter(at__lt=_start_of(until + timedelta(days=1)))
    return events


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))

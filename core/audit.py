"""Writing audit events from actions: one per transaction, never with content."""

from __future__ import annotations

from typing import Any

from django.db import models

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

from __future__ import annotations

from typing import Any

from django import template

from dispatch.selectors import escalation_due

register = template.Library()


@register.filter
def needs_next_ring(incident: Any) -> bool:
    """For a console row annotated by dispatch.selectors (no extra query)."""
    return escalation_due(
        incident,
        accepted=getattr(incident, "offers_accepted", 0) or 0,
        last_offer=getattr(incident, "last_offer_at", None),
    )

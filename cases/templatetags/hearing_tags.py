"""The case page's hearings section computes its own rows, so the case view needs to
know nothing about hearings."""

from __future__ import annotations

from typing import Any

from django import template

from cases.hearings import section_context
from cases.models import Case

register = template.Library()


@register.simple_tag(takes_context=True)
def hearing_section(context: template.Context, case: Case) -> dict[str, Any]:
    return section_context(context.get("request"), case)  # type: ignore[arg-type]

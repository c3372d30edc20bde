"""The cases panel on the incident page (``incidents.extensions``).

Dispatchers see only whether an incident has a case. Family support and coordinators
see links to the cases they may read and, on a verified incident, a button to open
one."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from cases import actions
from cases.rules import may_read_case
from incidents.models import Incident


def panel_context(request: HttpRequest, incident: Incident) -> dict[str, Any]:
    user = request.user
    cases = list(incident.cases.only("uuid", "status", "assigned_to_id", "opened_at"))
    works_cases = user.has_perm("cases.use_cases")
    return {
        "has_case": bool(cases),
        "open_count": sum(1 for case in cases if case.status == "open"),
        "works_cases": works_cases,
        "readable": [case for case in cases if works_cases and may_read_case(user, case)],
        "can_open": works_cases and actions.was_verified(incident),
    }


def register() -> None:
    from incidents import extensions

    extensions.add_panel(extensions.Panel("cases", "cases/incident_panel.html", panel_context))

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from alerts import actions
from alerts.models import Alert, AlertKind
from incidents.models import Incident, IncidentStatus


def panel_context(request: HttpRequest, incident: Incident) -> dict[str, Any]:
    alerts = list(
        Alert.objects.filter(incident=incident).select_related("composed_by", "approved_by")
    )
    done = actions.progress_of(alerts)
    kind = None
    if incident.status == IncidentStatus.VERIFIED:
        kind = AlertKind.ALERT
    elif incident.status == IncidentStatus.FALSE:
        kind = AlertKind.RUMOUR
    return {
        "alerts": [(alert, done[alert.pk]) for alert in alerts],
        "can_compose": kind is not None and request.user.has_perm("alerts.compose"),
        "compose_kind": kind,
        "sending_enabled": actions.sending_enabled(),
    }

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import Role, User
from conftest import FRUITVALE, make_user
from incidents import actions as incident_actions
from incidents.models import Incident, IncidentStatus
from intake.tests.factories import web_report


@pytest.fixture(autouse=True)
def _alert_settings(settings: Any) -> None:
    # Verification itself is dispatch's business (tested there); here an incident is
    # verified by a dispatcher's decision alone.
    settings.RR_CONFIRMATIONS_REQUIRED = 0
    settings.RR_ALERT_SECOND_APPROVAL = True
    settings.RR_ALERTS_PER_AREA_PER_HOUR = 3
    settings.RR_SMS_RATE_PER_SECOND = 1000


@pytest.fixture
def second_dispatcher(db: None) -> User:
    return make_user(Role.DISPATCHER, "second-dispatcher")


def incident_at(
    at: tuple[float, float],
    status: IncidentStatus,
    actor: User,
    where: str = "International & 35th",
) -> Incident:
    report = web_report("agents in vests detaining a man at the bus stop", at=at, where=where)
    incident = report.incident
    assert incident is not None
    if status == IncidentStatus.NEW:
        return incident
    incident_actions.change_status(
        actor=actor, incident=incident, status=IncidentStatus.VERIFYING, reason="checking"
    )
    if status != IncidentStatus.VERIFYING:
        incident_actions.change_status(actor=actor, incident=incident, status=status, reason="seen")
    incident.refresh_from_db()
    return incident


@pytest.fixture
def verified(service_area: Any, dispatcher: User) -> Incident:
    return incident_at(FRUITVALE, IncidentStatus.VERIFIED, dispatcher)

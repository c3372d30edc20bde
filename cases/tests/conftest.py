from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from accounts.models import Role, User
from cases import keystore
from conftest import FRUITVALE, make_user
from incidents import actions as incident_actions
from incidents.models import Incident, IncidentStatus
from intake.tests.factories import web_report


@pytest.fixture(autouse=True)
def _case_keystore(settings: Any, tmp_path: Path) -> None:
    """Each test has its own key store, as a deployment has its own directory."""
    settings.RR_CASE_KEYSTORE = str(tmp_path / "case-keys")
    settings.RR_CONFIRMATIONS_REQUIRED = 0
    keystore.clear_cache()


@pytest.fixture
def family_support(db: None) -> User:
    return make_user(Role.FAMILY_SUPPORT)


@pytest.fixture
def colleague(db: None) -> User:
    return make_user(Role.FAMILY_SUPPORT, "colleague")


def incident_with(status: IncidentStatus, actor: User) -> Incident:
    report = web_report("agents detained a man at the bus stop", at=FRUITVALE, where="Fruitvale")
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
    return incident_with(IncidentStatus.VERIFIED, dispatcher)

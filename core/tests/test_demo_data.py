"""`make run` loads the demo: it must work on a fresh database and again on a used one."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import User
from alerts.models import Subscriber, SubscriberStatus, ZipCode
from cases.models import Case
from incidents.models import Incident, IncidentStatus


@pytest.mark.django_db
def test_the_demo_loads_and_loads_again_without_duplicates() -> None:
    call_command("load_demo_data", "--force", verbosity=0)
    assert User.objects.filter(username="dispatcher2").exists()
    assert Incident.objects.filter(status=IncidentStatus.VERIFIED).exists()
    assert Incident.objects.filter(status=IncidentStatus.FALSE).exists()
    assert ZipCode.objects.count() == 4
    active = Subscriber.objects.filter(status=SubscriberStatus.ACTIVE).count()
    assert active == 60
    incidents = Incident.objects.count()
    [case] = Case.objects.all()
    assert case.incidents.get().status == IncidentStatus.VERIFIED
    assert case.person_name == "Ernesto Ramírez"
    assert case.contacts.get().language == "es"
    call_command("load_demo_data", "--force", verbosity=0)
    assert Incident.objects.count() == incidents
    assert Case.objects.count() == 1
    assert Subscriber.objects.count() == 60


@pytest.mark.django_db
def test_the_demo_refuses_to_load_without_debug(settings: object) -> None:
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("load_demo_data", verbosity=0)

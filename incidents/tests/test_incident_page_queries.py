"""The incident page loads one page of its reports, not all of them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db.models.signals import post_init
from django.test import Client

from conftest import FRUITVALE
from intake.models import Report
from intake.tests.factories import web_report


@pytest.fixture
def loaded_reports() -> Iterator[list[int]]:
    """Counts the Report rows turned into objects while it is active."""
    seen: list[int] = []

    def count(sender: type[Report], instance: Report, **kwargs: Any) -> None:
        seen.append(1)

    post_init.connect(count, sender=Report)
    try:
        yield seen
    finally:
        post_init.disconnect(count, sender=Report)


@pytest.mark.django_db
def test_a_page_of_the_incident_loads_only_that_pages_reports(
    dispatcher_client: Client, loaded_reports: list[int]
) -> None:
    first = web_report(at=FRUITVALE)
    for _ in range(59):
        web_report(at=FRUITVALE)
    assert first.incident is not None
    url = f"/console/incidents/{first.incident.uuid}/"
    loaded_reports.clear()
    response = dispatcher_client.get(url)
    assert response.status_code == 200
    assert response.content.count(b'class="report-card"') == 50
    assert len(loaded_reports) <= 50
    loaded_reports.clear()
    second = dispatcher_client.get(f"{url}?reports=2")
    assert second.content.count(b'class="report-card"') == 10
    assert len(loaded_reports) <= 10


def timeline_items(page: bytes) -> int:
    section = page.split(b'<ol class="timeline">', 1)[1].split(b"</ol>", 1)[0]
    return section.count(b"<li>")


@pytest.mark.django_db
def test_the_timeline_of_a_flooded_incident_is_paginated(
    dispatcher_client: Client, loaded_reports: list[int]
) -> None:
    first = web_report(at=FRUITVALE)
    for _ in range(59):
        web_report(at=FRUITVALE)
    assert first.incident is not None
    entries = first.incident.timeline.count()
    assert entries > 50  # an entry for each report that joined
    url = f"/console/incidents/{first.incident.uuid}/"
    page = dispatcher_client.get(url).content
    assert timeline_items(page) == 50
    rest = dispatcher_client.get(f"{url}?timeline=2").content
    assert timeline_items(rest) == entries - 50
    assert b"?timeline=2" in page

"""Reports for tests, created the way intake creates them."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.utils import timezone

from core.geo import Point
from intake.actions import WebReport, submit_web_report
from intake.models import Report


def web_report(
    text: str = "agents in vests at the corner",
    *,
    at: tuple[float, float] | None = None,
    observed_at: datetime | None = None,
    where: str = "",
    language: str = "en",
    callback: str = "",
) -> Report:
    return submit_web_report(
        WebReport(
            text=text,
            language=language,
            submission_key=uuid.uuid4(),
            observed_at=observed_at or timezone.now(),
            location_text=where or ("" if at else "somewhere"),
            point=Point(*at) if at else None,
            callback_number=callback,
        )
    )

"""What the hearings part of cases registers at start-up: the reminder sender on the
worker's timer and the volunteers' SMS keywords."""

from __future__ import annotations

# Reminders are due at whole hours; a minute late is on time.
REMINDER_INTERVAL_SECONDS = 60


def register() -> None:
    from cases import hearing_keywords, reminders
    from core import periodic

    periodic.register("cases.hearing-reminders", REMINDER_INTERVAL_SECONDS, reminders.periodic_send)
    hearing_keywords.register_keywords()

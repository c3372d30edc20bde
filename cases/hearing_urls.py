"""Hearings, reminders and accompaniment (built on cases.models' hearing models)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from cases import hearing_views

urlpatterns: list[URLPattern | URLResolver] = [
    path("hearings/", hearing_views.hearing_calendar, name="hearing-calendar"),
    path("<uuid:case_uuid>/hearings/new/", hearing_views.hearing_new, name="hearing-new"),
    path("hearings/<uuid:hearing_uuid>/", hearing_views.hearing_edit, name="hearing-edit"),
    path(
        "hearings/<uuid:hearing_uuid>/cancel/",
        hearing_views.hearing_cancel,
        name="hearing-cancel",
    ),
    path(
        "hearings/<uuid:hearing_uuid>/invite/",
        hearing_views.hearing_invite,
        name="hearing-invite",
    ),
    path(
        "accompaniments/<uuid:accompaniment_uuid>/cancel/",
        hearing_views.accompaniment_cancel,
        name="accompaniment-cancel",
    ),
    # Volunteers have no account: a signed link from their SMS opens this page.
    path("volunteer/<str:token>/", hearing_views.volunteer_page, name="volunteer"),
]

from django.urls import path

from incidents import views

app_name = "incidents"

urlpatterns = [
    path("", views.console, name="console"),
    path("events/", views.console_events, name="events"),
    path("area.geojson", views.area_geojson, name="area"),
    path("incidents/<uuid:incident_uuid>/", views.incident_detail, name="incident"),
    path("incidents/<uuid:incident_uuid>/status/", views.incident_status, name="incident-status"),
    path("incidents/<uuid:incident_uuid>/level/", views.incident_level, name="incident-level"),
    path("incidents/<uuid:incident_uuid>/merge/", views.incident_merge, name="incident-merge"),
    path("reports/<uuid:report_uuid>/", views.report_detail, name="report"),
    path("reports/<uuid:report_uuid>/place/", views.report_place, name="report-place"),
    path("reports/<uuid:report_uuid>/move/", views.report_move, name="report-move"),
    path("reports/<uuid:report_uuid>/split/", views.report_split, name="report-split"),
    path("reports/<uuid:report_uuid>/triage/", views.report_triage, name="report-triage"),
    path("reports/<uuid:report_uuid>/contact/", views.report_contact, name="report-contact"),
    path(
        "reports/<uuid:report_uuid>/photos/<uuid:photo_uuid>/",
        views.report_photo,
        name="report-photo",
    ),
]

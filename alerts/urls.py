from django.urls import path

from alerts import views

app_name = "alerts"

urlpatterns = [
    path("", views.alert_list, name="list"),
    path("control/", views.control, name="control"),
    path("templates/", views.templates, name="templates"),
    path("incidents/<uuid:incident_uuid>/new/", views.compose, name="compose"),
    path("incidents/<uuid:incident_uuid>/audience/", views.audience_preview, name="audience"),
    path("<uuid:alert_uuid>/", views.detail, name="detail"),
    path("<uuid:alert_uuid>/<slug:verb>/", views.change, name="change"),
]

from django.urls import path

from dispatch import views

app_name = "dispatch"

urlpatterns = [
    path("responders/", views.responder_list, name="responders"),
    path("responders/new/", views.responder_new, name="responder-new"),
    path("responders/import/", views.responder_import, name="responder-import"),
    path("responders/<uuid:responder_uuid>/", views.responder_detail, name="responder"),
    path(
        "responders/<uuid:responder_uuid>/trainings/",
        views.responder_training,
        name="responder-training",
    ),
    path("responders/<uuid:responder_uuid>/shifts/", views.responder_shift, name="responder-shift"),
    path("imports/<uuid:job_uuid>/", views.import_status, name="import"),
    path("incidents/<uuid:incident_uuid>/offers/", views.send_offers, name="offers"),
    path("incidents/<uuid:incident_uuid>/needed/", views.verifiers_needed, name="needed"),
    path("evidence/<uuid:evidence_uuid>/<str:which>/", views.evidence_file, name="evidence"),
]

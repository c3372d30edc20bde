from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

from cases import views

app_name = "cases"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.case_list, name="list"),
    path("new/", views.choose_incident, name="new"),
    path("new/<uuid:incident_uuid>/", views.open_case, name="open"),
    path("facilities/", views.facilities, name="facilities"),
    path("facilities/new/", views.facility_form, name="facility-new"),
    path("facilities/<uuid:facility_uuid>/", views.facility_form, name="facility-edit"),
    path("partners/", views.partners, name="partners"),
    path("partners/new/", views.partner_form, name="partner-new"),
    path("partners/<uuid:partner_uuid>/", views.partner_form, name="partner-edit"),
    path("<uuid:case_uuid>/", views.case_detail, name="detail"),
    path("<uuid:case_uuid>/person/", views.edit_person, name="edit-person"),
    path("<uuid:case_uuid>/handling/", views.edit_handling, name="edit-handling"),
    path("<uuid:case_uuid>/transfers/", views.add_transfer, name="transfer"),
    path("<uuid:case_uuid>/contacts/new/", views.contact_form, name="contact-new"),
    path("<uuid:case_uuid>/contacts/<uuid:contact_uuid>/", views.contact_form, name="contact-edit"),
    path(
        "<uuid:case_uuid>/contacts/<uuid:contact_uuid>/remove/",
        views.remove_contact,
        name="contact-remove",
    ),
    path("<uuid:case_uuid>/referrals/", views.add_referral, name="refer"),
    path(
        "<uuid:case_uuid>/referrals/<uuid:referral_uuid>/",
        views.referral_status,
        name="referral-status",
    ),
    path("<uuid:case_uuid>/funds/new/", views.fund_form, name="fund-new"),
    path("<uuid:case_uuid>/funds/<uuid:fund_uuid>/", views.fund_form, name="fund-edit"),
    path("<uuid:case_uuid>/notes/", views.add_note, name="note"),
    path("<uuid:case_uuid>/tasks/", views.add_task, name="task"),
    path("<uuid:case_uuid>/tasks/<uuid:task_uuid>/", views.task_done, name="task-done"),
    path("<uuid:case_uuid>/export/", views.export_case, name="export"),
    path("", include("cases.hearing_urls")),
]

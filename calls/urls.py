from django.urls import path

from calls import views

app_name = "calls"

urlpatterns = [
    path("console-section/", views.console_section, name="console-section"),
    path("my-shift/", views.my_shift, name="my-shift"),
    path("<uuid:call_uuid>/", views.call_detail, name="call"),
    path("<uuid:call_uuid>/number/", views.call_number, name="call-number"),
    path("<uuid:call_uuid>/recording/", views.call_recording, name="call-recording"),
    path("<uuid:call_uuid>/callback/", views.call_callback, name="call-callback"),
    path("<uuid:call_uuid>/report/", views.call_report, name="call-report"),
    path("roster/", views.roster, name="roster"),
    path("roster/<uuid:user_uuid>/", views.roster_line, name="roster-line"),
    path("roster/<uuid:user_uuid>/shifts/", views.roster_shift, name="roster-shift"),
    path(
        "roster/<uuid:user_uuid>/shifts/<int:shift_id>/remove/",
        views.roster_shift_remove,
        name="roster-shift-remove",
    ),
    path("prompts/", views.prompt_list, name="prompts"),
    # Before prompt-save, whose pattern would also match it.
    path("prompts/audio/<uuid:prompt_uuid>/", views.prompt_audio, name="prompt-audio"),
    path("prompts/<slug:language>/<slug:key>/", views.prompt_save, name="prompt-save"),
]

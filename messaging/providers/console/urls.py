from django.urls import path

from messaging.providers.console import views, voice_views

app_name = "test-phone"

urlpatterns = [
    path("", voice_views.with_call_mode(views.test_phone), name="phone"),
    path("conversation/", views.conversation, name="conversation"),
    path("new-number/", views.new_number, name="new-number"),
    # The call mode: the caller's side...
    path("call/", voice_views.call_start, name="call-start"),
    path("call/answer/", voice_views.call_answer, name="call-answer"),
    path("call/record/", voice_views.call_record, name="call-record"),
    path("call/hang-up/", voice_views.call_hang_up, name="call-hang-up"),
    path("call/poll/", voice_views.call_poll, name="call-poll"),
    # ...and the dispatchers' phones that ring for it.
    path("phones/", voice_views.phones, name="phones"),
    path("phones/<str:leg_id>/answer/", voice_views.phone_answer, name="phone-answer"),
    path("phones/<str:leg_id>/press/", voice_views.phone_press, name="phone-press"),
    path("phones/<str:leg_id>/ring-out/", voice_views.phone_ring_out, name="phone-ring-out"),
    path("phones/<str:leg_id>/hang-up/", voice_views.phone_hang_up, name="phone-hang-up"),
]

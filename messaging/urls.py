from django.urls import path

from messaging.providers.twilio import views as twilio_views
from messaging.providers.twilio import voice_views

app_name = "messaging"

urlpatterns = [
    path("twilio/sms", twilio_views.sms_webhook, name="twilio-sms"),
    path("twilio/status", twilio_views.status_callback, name="twilio-status"),
    path("twilio/voice", voice_views.incoming_call, name="twilio-voice"),
    path("twilio/voice/<slug:step>", voice_views.call_step, name="twilio-voice-step"),
]

from django.urls import path

from messaging.providers.twilio import views as twilio_views

app_name = "messaging"

urlpatterns = [
    path("twilio/sms", twilio_views.sms_webhook, name="twilio-sms"),
    path("twilio/status", twilio_views.status_callback, name="twilio-status"),
]

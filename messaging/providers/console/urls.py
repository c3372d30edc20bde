from django.urls import path

from messaging.providers.console import views

app_name = "test-phone"

urlpatterns = [
    path("", views.test_phone, name="phone"),
    path("conversation/", views.conversation, name="conversation"),
    path("new-number/", views.new_number, name="new-number"),
]

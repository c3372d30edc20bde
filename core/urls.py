from django.urls import path

from core import views

app_name = "retention"

urlpatterns = [
    path("", views.retention_rules, name="rules"),
]

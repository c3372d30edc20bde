"""Responders' own pages, reached by signed links from their SMS (short paths: /r/...)."""

from django.urls import path

from dispatch import views

app_name = "field"

urlpatterns = [
    path("me/<str:token>/", views.responder_page, name="me"),
    path("<str:token>/", views.field_page, name="offer"),
]

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

app_name = "cases"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", include("cases.hearing_urls")),
]

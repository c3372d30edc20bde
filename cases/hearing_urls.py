"""Hearings, reminders and accompaniment (built on cases.models' hearing models)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []

from django.urls import path

from intake import views

app_name = "intake"

urlpatterns = [
    path("", views.report, name="report"),
    path("thanks/", views.thanks, name="thanks"),
    path("challenge/", views.challenge, name="challenge"),
    path("area.geojson", views.area, name="area"),
]

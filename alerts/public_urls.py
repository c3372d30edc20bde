from django.urls import path

from alerts import views

app_name = "join"

urlpatterns = [
    path("", views.join, name="join"),
    path("confirm/", views.confirm, name="confirm"),
]

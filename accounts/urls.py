from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("login/mfa/", views.mfa_step, name="mfa"),
    path("reauthenticate/", views.reauthenticate, name="reauth"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
]

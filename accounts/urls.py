from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("login/mfa/", views.mfa_step, name="mfa"),
    path("reauthenticate/", views.reauthenticate, name="reauth"),
    path("password/", views.change_password, name="password"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("staff/", views.staff_list, name="staff"),
    path("staff/<uuid:user_uuid>/reset-two-step/", views.reset_factors, name="reset-factors"),
]

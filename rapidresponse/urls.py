from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.cache import cache_control

from accounts import views as account_views


@cache_control(max_age=0, no_store=True)
def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok\n", content_type="text/plain")


urlpatterns = [
    path("", account_views.home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("accounts/", include("accounts.urls")),
    path("accounts/mfa/", include("accounts.mfa_urls")),
    path("console/", include("incidents.urls")),
    path("dispatch/", include("dispatch.urls")),
    path("alerts/", include("alerts.urls")),
    path("calls/", include("calls.urls")),
    path("cases/", include("cases.urls")),
    path("retention/", include("core.urls")),
    path("audit/", include("core.audit_urls")),
    path("join/", include("alerts.public_urls")),
    path("r/", include("dispatch.field_urls")),
    path("report/", include("intake.urls")),
    path("hooks/", include("messaging.urls")),
    # Answers 404 unless the console provider is active (see its views).
    path("test-phone/", include("messaging.providers.console.urls")),
]

from django.conf import settings
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
    path("console/", include("incidents.urls")),
    path("report/", include("intake.urls")),
    path("hooks/", include("messaging.urls")),
]

if settings.RR_SMS_PROVIDER == "console":
    urlpatterns.append(path("test-phone/", include("messaging.providers.console.urls")))

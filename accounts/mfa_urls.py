"""allauth's MFA management pages, under their own names (allauth reverses them).

Only the pages for managing one's own factors: allauth's login stage and
re-authentication pages are replaced by ``accounts:mfa`` and ``accounts:reauth``, and
passkey login and sign-up are off. No URL takes a user id; every page acts on
``request.user``, and a WebAuthn key's id is looked up among that person's own."""

from __future__ import annotations

from allauth.mfa.adapter import get_adapter
from allauth.mfa.base import views as base_views
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes import views as code_views
from allauth.mfa.totp import views as totp_views
from allauth.mfa.webauthn import views as webauthn_views
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path
from django.utils.translation import gettext as _


def remove_webauthn(request: HttpRequest, pk: int) -> HttpResponse:
    """allauth's removal of a passkey, which asks no ``can_delete_authenticator``
    (its TOTP deactivation does): the last factor is kept (``MFAAdapter``)."""
    if request.method == "POST":
        key = Authenticator.objects.filter(
            user_id=request.user.pk, type=Authenticator.Type.WEBAUTHN, pk=pk
        ).first()
        if key is not None and not get_adapter().can_delete_authenticator(key):
            messages.error(
                request,
                _("This is your only way to log in. Add another passkey or an app first."),
            )
            return redirect("mfa_list_webauthn")
    response: HttpResponse = webauthn_views.remove_webauthn(request, pk=pk)
    return response


urlpatterns: list[URLPattern] = [
    path("", base_views.index, name="mfa_index"),
    path("totp/activate/", totp_views.activate_totp, name="mfa_activate_totp"),
    path("totp/deactivate/", totp_views.deactivate_totp, name="mfa_deactivate_totp"),
    path("recovery-codes/", code_views.view_recovery_codes, name="mfa_view_recovery_codes"),
    path(
        "recovery-codes/generate/",
        code_views.generate_recovery_codes,
        name="mfa_generate_recovery_codes",
    ),
    path(
        "recovery-codes/download/",
        code_views.download_recovery_codes,
        name="mfa_download_recovery_codes",
    ),
    path("webauthn/", webauthn_views.list_webauthn, name="mfa_list_webauthn"),
    path("webauthn/add/", webauthn_views.add_webauthn, name="mfa_add_webauthn"),
    path("webauthn/keys/<int:pk>/remove/", remove_webauthn, name="mfa_remove_webauthn"),
    path("webauthn/keys/<int:pk>/edit/", webauthn_views.edit_webauthn, name="mfa_edit_webauthn"),
]

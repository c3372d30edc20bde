"""allauth adapters: how allauth's MFA fits this project.

- Secrets (the TOTP key, the recovery codes' seed) are encrypted with the field keys
  (``core.crypto``), like every other secret at rest.
- No e-mail: staff accounts have no verified address and nothing is sent by mail.
- "Recently re-authenticated" is ``accounts.reauth``'s stamp (password and MFA in the
  last ``ACCOUNT_REAUTHENTICATION_TIMEOUT`` seconds), so allauth's own management pages
  (remove an authenticator, new recovery codes) ask for the same proof as ours.
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from django.conf import settings

from core import crypto

SECRET_CONTEXT = "allauth.mfa.secret"  # noqa: S105 - an encryption context label


class MFAAdapter(DefaultMFAAdapter):  # type: ignore[misc]
    def encrypt(self, text: str) -> str:
        return crypto.encrypt(text, context=SECRET_CONTEXT)

    def decrypt(self, encrypted_text: str) -> str:
        return crypto.decrypt(encrypted_text, context=SECRET_CONTEXT)

    def get_totp_issuer(self) -> str:
        return str(settings.RR_NETWORK_NAME)

    def _get_site_name(self) -> str:
        return str(settings.RR_NETWORK_NAME)

    def send_notification_mail(self, *args: Any, **kwargs: Any) -> None:
        return None

    def can_delete_authenticator(self, authenticator: Authenticator) -> bool:
        """Never the last factor (recovery codes do not count): without one, the
        password alone would enrol a new one at the next login (R9). Add another factor
        first; someone who lost theirs is reset by a coordinator."""
        return bool(
            Authenticator.objects.filter(user_id=authenticator.user_id)
            .exclude(type=Authenticator.Type.RECOVERY_CODES)
            .exclude(pk=authenticator.pk)
            .exists()
        )


class AccountAdapter(DefaultAccountAdapter):  # type: ignore[misc]
    def is_open_for_signup(self, request: Any) -> bool:
        return False

    def is_reauthentication_required(self, *, app: str, **kwargs: Any) -> bool:
        from accounts import mfa, reauth

        request = context.request
        if reauth.is_recent(request):
            return False
        # Enrolling a first factor needs only a recent password: a password-only
        # session reaches enrolment only while the person has no authenticator.
        user: Any = request.user
        return not (
            user.is_authenticated
            and not mfa.is_enrolled(user)
            and reauth.is_password_recent(request)
        )

    def send_notification_mail(self, *args: Any, **kwargs: Any) -> None:
        return None

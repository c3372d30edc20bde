"""Audit events of accounts: logins, logouts, disabling, MFA changes.

Never a code, a secret or a password; a failed login names no account (the typed
username may be a password typed in the wrong box), only a keyed hash of it."""

from __future__ import annotations

from typing import Any

from core import audit
from core.crypto import keyed_hash
from core.models import AuditAction, AuditEvent


def account_event(
    *, actor: Any, action: AuditAction, user: Any, **detail: str | int | bool | None
) -> AuditEvent:
    return audit.record(actor=actor, action=action, target=user, **detail)


def failed_login(username: str) -> AuditEvent:
    """A failed password check. The target is a keyed hash of the typed username, so
    repeated failures for one name can be grouped without the name being stored."""
    typed = username.strip().casefold()[:256]
    return AuditEvent.objects.create(
        actor=None,
        action=AuditAction.LOGIN_FAILED,
        target_type="accounts.login",
        target_id=keyed_hash(typed, purpose="login-audit")[:64],
    )


def _was_active(user: Any) -> bool:
    from accounts.models import User

    if user.pk is None:
        return False
    return bool(User.objects.filter(pk=user.pk, is_active=True).exists())


def remember_activity(sender: Any, instance: Any, **kwargs: Any) -> None:
    """Before a save: whether the account was active, to audit its disabling once."""
    instance._rr_was_active = _was_active(instance) if not instance.is_active else False


def audit_disabling(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if not created and getattr(instance, "_rr_was_active", False) and not instance.is_active:
        account_event(actor=None, action=AuditAction.ACCOUNT_DISABLED, user=instance)

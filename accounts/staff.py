"""Coordinators' view of staff accounts, and resetting a lost second factor.

Someone who lost both their authenticator and their recovery codes cannot sign in. A
coordinator (who has just confirmed their own password and factor, and has confirmed by
voice or in person who they are talking to) removes every factor of that account; all
its sessions end, and the audit log records who reset whom. The password is left alone:
the person signs in with it and sets up a new factor at once, while still on the call.
The coordinator never learns a password, so a reset cannot be used to sign in as
someone else (and, say, give an alert its second approval)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from allauth.mfa.models import Authenticator
from django.core.paginator import Page, Paginator
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.audit import account_event
from accounts.models import TOTPStep, User
from accounts.sessions import end_sessions
from core.models import AuditAction

PAGE_SIZE = 50
# How the staff page lists a person's factors: the ones that sign in first.
FACTOR_ORDER = (
    Authenticator.Type.TOTP.value,
    Authenticator.Type.WEBAUTHN.value,
    Authenticator.Type.RECOVERY_CODES.value,
)


class ResetRefused(Exception):
    """The reset cannot be done; the message says why, for the coordinator."""


@dataclass(frozen=True)
class StaffRow:
    user: User
    factors: tuple[str, ...]  # the kinds of factor, in allauth's names
    last_login: datetime | None
    can_reset: bool


def staff_page(actor: User, number: str | int | None) -> tuple[Page[User], list[StaffRow]]:
    """One page of staff accounts, by username, each with the kinds of factor it has
    and whether ``actor`` may reset them: three queries (the count, the page, the
    factors), whatever the page's length."""
    people = User.objects.order_by("username").only(
        "pk",
        "uuid",
        "username",
        "first_name",
        "last_name",
        "role",
        "is_active",
        "last_login",
        "is_superuser",
    )
    page = Paginator(people, PAGE_SIZE).get_page(number)
    kinds: dict[int, set[str]] = {}
    for user_id, kind in Authenticator.objects.filter(
        user_id__in=[user.pk for user in page]
    ).values_list("user_id", "type"):
        kinds.setdefault(user_id, set()).add(kind)
    order = {kind: rank for rank, kind in enumerate(FACTOR_ORDER)}

    def in_order(found: set[str]) -> tuple[str, ...]:
        return tuple(sorted(found, key=lambda kind: (order.get(kind, len(order)), kind)))

    rows = [
        StaffRow(
            user,
            factors,
            user.last_login,
            can_reset=bool(factors) and refusal(actor, user) is None,
        )
        for user in page
        for factors in [in_order(kinds.get(user.pk, set()))]
    ]
    return page, rows


def refusal(actor: User, user: User) -> str | None:
    """Why ``actor`` may not reset ``user``'s factors, or None."""
    if actor.pk == user.pk:
        return _(
            "You cannot reset your own two-step login here: use your own Two-step login "
            "page, or ask another coordinator."
        )
    if user.is_superuser and not actor.is_superuser:
        return _("Only a superuser can reset a superuser's two-step login.")
    return None


def reset_second_factors(*, actor: User, user: User) -> int:
    """Remove every factor of ``user`` (authenticator apps, passkeys, recovery codes) and
    end all of their sessions. Returns how many factors were removed."""
    with transaction.atomic():
        # Checked on the locked row: what the page showed may have changed since.
        locked = User.objects.select_for_update().get(pk=user.pk)
        refused = refusal(actor, locked)
        if refused:
            raise ResetRefused(refused)
        removed, _by_model = Authenticator.objects.filter(user_id=locked.pk).delete()
        TOTPStep.objects.filter(user_id=locked.pk).delete()
        account_event(actor=actor, action=AuditAction.MFA_RESET, user=locked, removed=removed)
    end_sessions(locked)
    return int(removed)

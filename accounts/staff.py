"""Coordinators' view of staff accounts, and resetting a lost second factor.

Someone who lost both their authenticator and their recovery codes cannot sign in. A
coordinator (who has just confirmed their own password and factor) removes every factor
of that account and gives it a new password at once: whoever held the old password
could otherwise enrol a factor of their own at the next sign-in, which needs only the
password. The coordinator gives the new password to the person directly; their next
sign-in goes to enrolment. Every session of the account ends, and the audit log records
who reset whom (no password, no secret)."""

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

    @property
    def has_login_factor(self) -> bool:
        return any(kind != Authenticator.Type.RECOVERY_CODES for kind in self.factors)


def staff_page(number: str | int | None) -> tuple[Page[User], list[StaffRow]]:
    """One page of staff accounts, by username, each with the kinds of factor it has:
    two queries, whatever the page's length."""
    people = User.objects.order_by("username").only(
        "pk", "uuid", "username", "first_name", "last_name", "role", "is_active", "last_login"
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

    rows = [StaffRow(user, in_order(kinds.get(user.pk, set())), user.last_login) for user in page]
    return page, rows


def reset_second_factors(*, actor: User, user: User, new_password: str) -> int:
    """Remove every factor of ``user`` (authenticator apps, passkeys, recovery codes),
    set ``new_password`` (already validated) and end all of their sessions. Returns how
    many factors were removed."""
    if actor.pk == user.pk:
        raise ResetRefused(
            _(
                "You cannot reset your own two-step login here: use your own Two-step "
                "login page, or ask another coordinator."
            )
        )
    if user.is_superuser and not actor.is_superuser:
        raise ResetRefused(_("Only a superuser can reset a superuser's two-step login."))
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        removed, _by_model = Authenticator.objects.filter(user_id=locked.pk).delete()
        TOTPStep.objects.filter(user_id=locked.pk).delete()
        locked.set_password(new_password)
        locked.save(update_fields=["password"])
        account_event(actor=actor, action=AuditAction.MFA_RESET, user=locked, removed=removed)
    end_sessions(locked)
    return int(removed)

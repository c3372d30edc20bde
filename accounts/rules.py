"""Permission predicates (django-rules). Views, selectors and any API check these."""

from __future__ import annotations

import rules

from accounts.models import Role, User


@rules.predicate
def is_coordinator(user: User) -> bool:
    return bool(user.is_authenticated and user.has_role(Role.COORDINATOR))


@rules.predicate
def is_dispatcher(user: User) -> bool:
    return bool(user.is_authenticated and user.has_role(Role.DISPATCHER))


@rules.predicate
def is_staff_member(user: User) -> bool:
    return bool(user.is_authenticated and user.is_active)


can_dispatch = is_dispatcher | is_coordinator

rules.add_perm("incidents.view_console", can_dispatch)
rules.add_perm("incidents.change_incident", can_dispatch)
rules.add_perm("intake.view_report", can_dispatch)
rules.add_perm("intake.change_report", can_dispatch)
rules.add_perm("messaging.use_test_phone", is_staff_member)
rules.add_perm("accounts.manage_staff", is_coordinator)

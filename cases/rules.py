"""Who may see and change family-support cases (R13).

- Coordinators see and change every case, and maintain the facility and partner
  directories.
- Family-support members see the cases assigned to them and the cases nobody is
  assigned to yet (the pool a new case waits in until someone takes it); a case
  assigned to a colleague is not theirs to read: it answers 404, as if it did not
  exist.
- Dispatchers and verifiers never see a case; the incident page tells them only that
  an incident has one.
- Volunteers (responders) have no account; what reaches them (reminders, the
  accompaniment page) never carries the A-number, the date of birth or notes.
"""

from __future__ import annotations

from typing import Any

import rules

from accounts.models import Role
from accounts.rules import is_coordinator


@rules.predicate
def is_family_support(user: Any) -> bool:
    return bool(user.is_authenticated and user.has_role(Role.FAMILY_SUPPORT))


@rules.predicate
def may_read_case(user: Any, case: Any) -> bool:
    """Object level: a coordinator, or family support on their own or an unassigned case."""
    if case is None or not user.is_authenticated:
        return False
    if user.has_role(Role.COORDINATOR):
        return True
    if user.has_role(Role.FAMILY_SUPPORT):
        return case.assigned_to_id is None or case.assigned_to_id == user.pk
    return False


works_cases = is_family_support | is_coordinator

rules.add_perm("cases.use_cases", works_cases)
rules.add_perm("cases.view_case", works_cases & may_read_case)
rules.add_perm("cases.manage_directories", is_coordinator)
# Reassigning a case to someone else is a coordinator's decision; family support may
# take an unassigned case or give one back.
rules.add_perm("cases.assign_anyone", is_coordinator)

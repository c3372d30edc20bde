"""Who may do what with the cross-cutting pieces (django-rules)."""

from __future__ import annotations

import rules

from accounts.rules import is_coordinator

rules.add_perm("core.manage_retention", is_coordinator)
rules.add_perm("core.view_audit", is_coordinator)

"""Who may do what with alerts (django-rules)."""

from __future__ import annotations

import rules

from accounts.rules import can_dispatch, is_coordinator

rules.add_perm("alerts.compose", can_dispatch)
rules.add_perm("alerts.approve", can_dispatch)
rules.add_perm("alerts.manage_templates", is_coordinator)
rules.add_perm("alerts.kill_switch", is_coordinator)

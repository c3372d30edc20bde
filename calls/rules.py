"""Who may do what with hotline calls (django-rules)."""

from __future__ import annotations

import rules

from accounts.rules import can_dispatch, is_coordinator

rules.add_perm("calls.view_calls", can_dispatch)
rules.add_perm("calls.take_calls", can_dispatch)
rules.add_perm("calls.manage_roster", is_coordinator)
rules.add_perm("calls.manage_prompts", is_coordinator)

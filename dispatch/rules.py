"""Who may do what in dispatch (django-rules)."""

from __future__ import annotations

import rules

from accounts.rules import can_dispatch, is_coordinator

rules.add_perm("dispatch.view_responders", can_dispatch)
rules.add_perm("dispatch.manage_responders", is_coordinator)
rules.add_perm("dispatch.send_offers", can_dispatch)
rules.add_perm("dispatch.view_evidence", can_dispatch)
rules.add_perm("dispatch.view_original_evidence", is_coordinator)

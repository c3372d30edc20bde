from __future__ import annotations

from typing import Any

from accounts.models import Role
from calls import actions
from calls.models import DispatcherLine
from conftest import make_user


def dispatcher_on_shift(name: str, phone: str, *, role: Role = Role.DISPATCHER) -> DispatcherLine:
    user = make_user(role, username=name)
    line = actions.save_line(actor=None, user=user, phone=phone)
    return actions.set_on_shift(actor=user, line=line, on_shift=True)


def line_for(user: Any, phone: str) -> DispatcherLine:
    return actions.save_line(actor=None, user=user, phone=phone)

"""Fixtures of the accounts tests."""

from __future__ import annotations

import pytest


class Clock:
    """A fixed TOTP clock for allauth's and our code checks (only theirs)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def totp_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("allauth.mfa.totp.internal.auth.time", clock)
    monkeypatch.setattr("accounts.mfa.totp_time", clock.time)
    return clock

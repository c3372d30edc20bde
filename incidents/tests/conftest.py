from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _verification_without_field_confirmations(settings: Any) -> None:
    """The state machine on its own: the dispatch app's rule that verifying needs
    confirmations from the scene is tested in dispatch/tests."""
    settings.RR_CONFIRMATIONS_REQUIRED = 0

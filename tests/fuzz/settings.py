"""Hypothesis settings for the fuzz suite: bounded so the whole suite stays quick.

``RR_FUZZ_EXAMPLES`` raises the number of examples for a longer hunt.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("RR_FUZZ_EXAMPLES", "150"))

# Database examples are slower, and their fixtures (a test transaction) are meant to be
# shared by the examples of one test.
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FUZZ_DB = settings(FUZZ, max_examples=max(20, EXAMPLES // 3))
# A state machine example is a sequence of up to 20 actions, each a few transactions.
FUZZ_MACHINE = settings(FUZZ, max_examples=max(10, EXAMPLES // 10), stateful_step_count=20)

"""Solving the form's proof-of-work in tests, in-process, as the widget would."""

from __future__ import annotations

import altcha

from intake.proof_of_work import new_challenge


def solve(challenge: dict[str, object]) -> str:
    parsed = altcha.Challenge.from_dict(challenge)
    solution = altcha.solve_challenge(parsed, timeout=30)
    if solution is None:
        raise RuntimeError("The challenge could not be solved in time.")
    return altcha.Payload(parsed, solution).to_base64()


def solved_payload() -> str:
    """A payload for a fresh challenge, ready to post as the form's ``altcha`` field."""
    return solve(new_challenge())

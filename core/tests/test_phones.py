from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import phones


@pytest.mark.parametrize(
    "raw",
    ["+15105550123", "(510) 555-0123", "510-555-0123", "510.555.0123", " +1 510 555 0123 "],
)
def test_every_format_of_one_number_normalises_and_hashes_the_same(raw: str) -> None:
    assert phones.normalize(raw) == "+15105550123"
    assert phones.phone_hash(phones.normalize(raw)) == phones.phone_hash("+15105550123")


@pytest.mark.parametrize("raw", ["", "   ", "hello", "123", "+1555", "5" * 70])
def test_non_numbers_are_refused(raw: str) -> None:
    with pytest.raises(phones.InvalidPhoneNumber):
        phones.normalize(raw)


@given(st.integers(min_value=2015550100, max_value=9899999999))
def test_normalise_is_idempotent(number: int) -> None:
    try:
        once = phones.normalize(str(number))
    except phones.InvalidPhoneNumber:
        return
    assert phones.normalize(once) == once


def test_short_codes_and_sender_names_still_get_a_stable_form() -> None:
    assert phones.normalize_sender("+15105550123") == "+15105550123"
    assert phones.normalize_sender(" 898 287 ") == "898287"
    assert phones.normalize_sender("Acme Bank") == "ACMEBANK"


def test_mask_shows_only_the_last_two_digits() -> None:
    assert phones.mask("+15105550123") == "•••• 23"

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.sms import GSM_BASIC, segments


@pytest.mark.parametrize(
    ("text", "encoding", "count"),
    [
        ("", "GSM-7", 0),
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # extended characters count twice
        ("€" * 81, "GSM-7", 2),
        ("Señora, la migra está aquí", "UCS-2", 1),  # "á" is not GSM-7, "ñ" is
        ("á" * 70, "UCS-2", 1),
        ("á" * 71, "UCS-2", 2),
        ("á" * 134, "UCS-2", 2),
        ("🚨" * 35, "UCS-2", 1),  # an emoji is two UTF-16 units
        ("🚨" * 36, "UCS-2", 2),
    ],
)
def test_segments(text: str, encoding: str, count: int) -> None:
    result = segments(text)
    assert (result.encoding, result.segments) == (encoding, count)


@given(st.text(alphabet=GSM_BASIC.replace("\x1b", ""), max_size=500))
def test_gsm_text_never_needs_more_segments_than_its_length_allows(text: str) -> None:
    result = segments(text)
    assert result.encoding == "GSM-7"
    assert result.segments * 160 >= len(text)

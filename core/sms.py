"""SMS length arithmetic: encoding and segment count, as carriers bill and deliver.

A message that fits the GSM 03.38 alphabet uses 7-bit characters: 160 in one segment,
153 per segment when split. Anything else (an accented capital, an emoji, "ñ" is fine but
"á" is not) forces UCS-2 for the whole message: 70 characters, then 67 per segment.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = "^{}\\[~]|€\f"
GSM_BASIC_SET = frozenset(GSM_BASIC)
GSM_EXTENDED_SET = frozenset(GSM_EXTENDED)


@dataclass(frozen=True)
class Segments:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7 (extended characters count 2), UTF-16 units for UCS-2
    segments: int
    per_segment: int


def is_gsm7(text: str) -> bool:
    return all(c in GSM_BASIC_SET or c in GSM_EXTENDED_SET for c in text)


def segments(text: str) -> Segments:
    if is_gsm7(text):
        units = sum(2 if c in GSM_EXTENDED_SET else 1 for c in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    if units <= single:
        return Segments(encoding, units, 1 if units else 0, single)
    return Segments(encoding, units, -(-units // multi), multi)

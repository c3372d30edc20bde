"""Which of the network's languages a report is written in."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from lingua import IsoCode639_1, LanguageDetector, LanguageDetectorBuilder

# Below this confidence the text is too short or mixed to tell; the caller falls back
# to what it already knows (the sender's last language, the page language).
MIN_CONFIDENCE = 0.65


@cache
def _detector() -> LanguageDetector | None:
    codes = [getattr(IsoCode639_1, code.upper()) for code in settings.RR_LANGUAGES]
    if len(codes) < 2:
        return None
    return (
        LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
        .with_preloaded_language_models()
        .build()
    )


def warm_up() -> None:
    """Load the models now rather than on the first message."""
    _detector()


def detect(text: str, *, min_words: int = 1) -> str | None:
    """The network language ``text`` is written in, or None when it cannot tell.

    ``min_words``: below this many words the text is not judged at all. Callers who
    already know the sender's language pass more, because a short follow-up ("35th &
    International") is mostly place names that look English whatever the sender speaks.
    """
    detector = _detector()
    if detector is None:
        return str(settings.RR_LANGUAGES[0])
    words = [w for w in text.split() if sum(c.isalpha() for c in w) >= 2]
    if sum(c.isalpha() for c in text) < 3 or len(words) < min_words:
        return None
    values = detector.compute_language_confidence_values(text)
    if not values or values[0].value < MIN_CONFIDENCE:
        return None
    code = values[0].language.iso_code_639_1.name.lower()
    return code if code in settings.RR_LANGUAGES else None

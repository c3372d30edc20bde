"""Reserved keywords and the registry that routes them.

Carrier keywords (STOP, START, HELP and their variants, CTIA) are matched when they are
the whole message, as carriers do. Other apps register their own words (with arguments,
such as ``YES 4821``) at start-up. A matched keyword never becomes a report.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from messaging.models import InboundMessage

STOP_WORDS: dict[str, str | None] = {
    "STOP": "en",
    "STOPALL": "en",
    "UNSUBSCRIBE": "en",
    "CANCEL": "en",
    "END": "en",
    "QUIT": "en",
    "OPTOUT": "en",
    "REVOKE": "en",
    "PARAR": "es",
    "ALTO": "es",
    "CANCELAR": "es",
    "DETENER": "es",
    "BAJA": "es",
}
START_WORDS: dict[str, str | None] = {
    "START": "en",
    "UNSTOP": "en",
    "YES": "en",
    "INICIAR": "es",
    "REANUDAR": "es",
}
HELP_WORDS: dict[str, str | None] = {"HELP": "en", "INFO": None, "AYUDA": "es"}


# A handler gets the message, the canonical keyword, the rest of the message and the
# reply language; it runs inside the webhook's transaction and returns the reply, or
# None when the message is not for it after all ("Si hay agentes en la calle 5" starts
# with a responder's keyword but is a report): it then goes on as a report.
KeywordHandler = Callable[["InboundMessage", str, str, str], "str | None"]


@dataclass(frozen=True)
class Keyword:
    word: str
    handler: KeywordHandler
    language: str | None
    takes_arguments: bool


@dataclass(frozen=True)
class KeywordMatch:
    keyword: Keyword
    arguments: str


class KeywordConflict(ValueError):
    pass


_registry: dict[tuple[str, bool], Keyword] = {}


def canonical(text: str) -> str:
    """Upper case, accents and surrounding punctuation removed: ``¡Ayúda!`` -> ``AYUDA``."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return plain.strip().strip(".,;:!?¡¿\"'()[]").upper()


def register(
    words: Mapping[str, str | None],
    handler: KeywordHandler,
    *,
    takes_arguments: bool = False,
    replace: bool = False,
) -> None:
    """Route each of ``words`` (word -> language, None when it is ambiguous) to handler."""
    for word, language in words.items():
        key = (canonical(word), takes_arguments)
        if key in _registry and not replace and _registry[key].handler is not handler:
            raise KeywordConflict(f"The keyword {word!r} already has a handler.")
        _registry[key] = Keyword(key[0], handler, language, takes_arguments)


def match(body: str) -> KeywordMatch | None:
    tokens = body.split(maxsplit=1)
    if not tokens:
        return None
    first = canonical(tokens[0])
    rest = tokens[1].strip() if len(tokens) > 1 else ""
    if not rest or not canonical(rest):
        exact = _registry.get((first, False))
        if exact is not None:
            return KeywordMatch(exact, "")
    with_arguments = _registry.get((first, True))
    if with_arguments is not None and rest:
        return KeywordMatch(with_arguments, rest)
    return None


def registered_words() -> list[str]:
    return sorted({word for word, _ in _registry})

"""What responders text: YES/NO to offers, CONFIRMED/NOT SEEN from the scene, ON/OFF.

Every answer names what happened. A number that is not a responder, a missing code or
a code that is no longer open gets a clear reply and changes nothing.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from dispatch import actions, links
from dispatch.models import Finding, OfferStatus, Responder
from messaging import keywords
from messaging.models import InboundMessage

CODE = re.compile(r"^\s*(\d{4})\b")
# Nothing but a code: "YES 4821" is an answer even from a number we do not know.
ONLY_CODE = re.compile(r"^\s*\d{4}\s*[.!]?\s*$")

ACCEPT_WORDS: dict[str, str | None] = {"YES": "en", "Y": "en", "SI": "es"}
DECLINE_WORDS: dict[str, str | None] = {"NO": None, "N": None}
CONFIRM_WORDS: dict[str, str | None] = {"CONFIRMED": "en", "CONFIRMADO": "es", "CONFIRMO": "es"}
NOT_SEEN_WORDS: dict[str, str | None] = {"NOT": "en", "NOTSEEN": "en"}
ON_WORDS: dict[str, str | None] = {"ON": "en", "DISPONIBLE": "es"}
OFF_WORDS: dict[str, str | None] = {"OFF": "en", "OCUPADO": "es", "OCUPADA": "es"}


def _responder(message: InboundMessage) -> Responder | None:
    return Responder.objects.filter(phone_hash=message.sender_hash, active=True).first()


def _not_a_responder() -> str:
    return _(
        "%(network)s: this number is not registered as a responder, so nothing changed. "
        "To report something, text what you see and where."
    ) % {"network": settings.RR_NETWORK_NAME}


def _code(arguments: str) -> str | None:
    found = CODE.match(arguments)
    return found.group(1) if found else None


def _reply_language(responder: Responder, language: str) -> str:
    return language if language in settings.RR_LANGUAGES else actions.responder_language(responder)


def answer(message: InboundMessage, keyword: str, arguments: str, language: str) -> str | None:
    """YES 4821 / NO 4821 (and NO VISTO 4821, the Spanish NOT SEEN).

    Only a responder's message that starts with a code is an answer; anything else
    ("No se, vi dos camionetas", or a stranger's "Si hay agentes") is a report."""
    if keyword == "NO" and arguments.upper().startswith("VISTO"):
        return report_finding(message, "NOT", "SEEN" + arguments[5:], "es")
    responder = _responder(message)
    code = _code(arguments)
    if responder is None and ONLY_CODE.match(arguments):
        return _not_a_responder()
    if responder is None or code is None:
        return None
    with translation.override(_reply_language(responder, language)):
        offer = actions.any_offer_for(responder.phone_hash, code)
        if offer is None:
            return _("No offer has the code %(code)s. Nothing changed.") % {"code": code}
        result = actions.answer_offer(offer=offer, accept=keyword in ACCEPT_WORDS)
        return result.reply


def report_finding(
    message: InboundMessage, keyword: str, arguments: str, language: str
) -> str | None:
    """CONFIRMED 4821 / NOT SEEN 4821: a field report by SMS, for responders without data.
    Without a responder and a code it is not one ("Not sure but ICE is at 5th")."""
    rest = arguments.strip()
    if keyword == "NOT":
        if not rest.upper().startswith("SEEN"):
            return None
        rest = rest[4:]
    finding = Finding.NOT_VERIFIED if keyword in {"NOT", "NOTSEEN"} else Finding.VERIFIED
    responder = _responder(message)
    code = _code(rest)
    if responder is None and ONLY_CODE.match(rest):
        return _not_a_responder()
    if responder is None or code is None:
        return None
    with translation.override(_reply_language(responder, language)):
        offer = actions.any_offer_for(responder.phone_hash, code)
        if offer is None or offer.status != OfferStatus.ACCEPTED:
            return _("Offer %(code)s is not one you accepted. Nothing changed.") % {"code": code}
        actions.save_field_report(offer=offer, data=actions.FieldData(finding=finding))
        return _("Recorded for %(code)s, thank you. Add details or photos here: %(link)s") % {
            "code": code,
            "link": links.offer_link(offer),
        }


def availability(
    message: InboundMessage, keyword: str, arguments: str, language: str
) -> str | None:
    responder = _responder(message)
    if responder is None:
        return None
    available = keyword in ON_WORDS
    with translation.override(_reply_language(responder, language)):
        actions.set_availability(responder=responder, available=available)
        if available:
            return _(
                "You are available for offers. Share your location or turn this off here: "
                "%(link)s (or reply OFF)."
            ) % {"link": links.responder_link(responder)}
        return _("You are off. Reply ON when you can take offers again.")


def register_responder_keywords() -> None:
    keywords.register(ACCEPT_WORDS, answer, takes_arguments=True)
    keywords.register(DECLINE_WORDS, answer, takes_arguments=True)
    keywords.register(CONFIRM_WORDS, report_finding, takes_arguments=True)
    keywords.register(NOT_SEEN_WORDS, report_finding, takes_arguments=True)
    keywords.register(ON_WORDS, availability)
    keywords.register(OFF_WORDS, availability)

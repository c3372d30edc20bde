"""Subscriber keywords: JOIN / ALERTA + area, and what START, YES and SI do for
subscriptions (on top of the carrier handling every number gets). STOP reaches
subscriptions through the ``opted_out`` signal, which provider opt-outs send too."""

from __future__ import annotations

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from alerts import subscriptions
from alerts.models import SubscriberStatus
from core import phones
from messaging import handlers, keywords
from messaging.models import InboundMessage

JOIN_WORDS: dict[str, str | None] = {
    "JOIN": "en",
    "SUBSCRIBE": "en",
    "ALERTA": "es",
    "ALERTAS": "es",
}
# "ALERTA" is also how people start a report ("¡Alerta! migra en la 35"): unless a known
# area follows, the message goes on to the hotline as a report.
REPORT_FIRST = frozenset({"ALERTA", "ALERTAS"})
CONFIRM_WORDS: dict[str, str | None] = {"SI": "es"}


def join(message: InboundMessage, keyword: str, arguments: str, language: str) -> str | None:
    with translation.override(language):
        area = subscriptions.area_from_text(arguments)
        if area is None:
            if keyword in REPORT_FIRST:
                return None
            return _(
                "%(network)s: to get verified alerts, reply JOIN and your neighbourhood or "
                "ZIP code, for example JOIN Fruitvale or JOIN 94601."
            ) % {"network": settings.RR_NETWORK_NAME}
        try:
            subscriber = subscriptions.subscribe(
                phone=message.sender, language=language, areas=[area]
            )
        except (phones.InvalidPhoneNumber, subscriptions.SubscriptionRefused):
            return _("%(network)s: alerts can only be sent to a mobile phone number.") % {
                "network": settings.RR_NETWORK_NAME
            }
        if subscriber.status == SubscriberStatus.ACTIVE:
            return _(
                "%(network)s: you will also get verified alerts for %(area)s. Reply STOP to end."
            ) % {
                "network": settings.RR_NETWORK_NAME,
                "area": area.label,
            }
        return _(
            "%(network)s: reply YES to get verified alerts for %(area)s. About 1 to 4 messages "
            "a month; message and data rates may apply. Reply STOP to end, HELP for help. "
            "To report something happening now, text what you see and where."
        ) % {"network": settings.RR_NETWORK_NAME, "area": area.label}


def join_without_area(
    message: InboundMessage, keyword: str, arguments: str, language: str
) -> str | None:
    return join(message, keyword, "", language)


def start(message: InboundMessage, keyword: str, arguments: str, language: str) -> str | None:
    reply = handlers.start(message, keyword, arguments, language)
    subscriber = subscriptions.confirm_or_restart(phone_hash=message.sender_hash)
    if subscriber is None:
        return reply
    with translation.override(subscriber.language):
        return _("%(network)s: you will get verified alerts for %(areas)s. Reply STOP to end.") % {
            "network": settings.RR_NETWORK_NAME,
            "areas": subscriptions.area_labels(subscriber),
        }


def confirm_spanish(
    message: InboundMessage, keyword: str, arguments: str, language: str
) -> str | None:
    """A bare SI confirms a pending sign-up. From anyone else it is not a keyword: it
    goes on as a message to the hotline."""
    subscriber = subscriptions.pending(phone_hash=message.sender_hash)
    if subscriber is None:
        return None
    return start(message, keyword, arguments, language)


def register_subscriber_keywords() -> None:
    keywords.register(JOIN_WORDS, join, takes_arguments=True)
    keywords.register(JOIN_WORDS, join_without_area)
    keywords.register(CONFIRM_WORDS, confirm_spanish)
    keywords.register(keywords.START_WORDS, start, replace=True)

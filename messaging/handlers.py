"""The carrier keywords every deployment answers. Later apps may add to what they do
(subscriptions, shifts) by registering a replacement that calls these."""

from __future__ import annotations

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from messaging import keywords
from messaging.actions import hotline_help_text
from messaging.models import InboundMessage, OptOut
from messaging.signals import opted_out


def stop(message: InboundMessage, keyword: str, arguments: str, language: str) -> str:
    _optout, created = OptOut.objects.get_or_create(phone_hash=message.sender_hash)
    opted_out.send(sender=OptOut, phone_hash=message.sender_hash)
    if not created:
        # One confirmation only (CTIA): a repeated STOP is heard but not answered.
        return ""
    with translation.override(language):
        return _(
            "%(network)s: you will get no more messages from this number. Reply START to "
            "receive them again."
        ) % {"network": settings.RR_NETWORK_NAME}


def start(message: InboundMessage, keyword: str, arguments: str, language: str) -> str:
    OptOut.objects.filter(phone_hash=message.sender_hash).delete()
    with translation.override(language):
        return _(
            "%(network)s: you can receive messages from this number again. Reply HELP for "
            "help, STOP to stop."
        ) % {"network": settings.RR_NETWORK_NAME}


def help_(message: InboundMessage, keyword: str, arguments: str, language: str) -> str:
    with translation.override(language):
        return hotline_help_text()


def register_carrier_keywords() -> None:
    keywords.register(keywords.STOP_WORDS, stop)
    keywords.register(keywords.START_WORDS, start)
    keywords.register(keywords.HELP_WORDS, help_)

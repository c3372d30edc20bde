"""ON / OFF from a dispatcher's phone: on or off shift for hotline calls. A number that
is not a dispatcher's goes on to the responders' ON / OFF (dispatch.keywords)."""

from __future__ import annotations

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from calls import actions
from calls.models import DispatcherLine
from dispatch import keywords as responder_keywords
from incidents.actions import ActionRefused
from messaging import keywords
from messaging.models import InboundMessage


def shift(message: InboundMessage, keyword: str, arguments: str, language: str) -> str | None:
    line = (
        DispatcherLine.objects.filter(phone_hash=message.sender_hash, active=True)
        .select_related("user")
        .first()
    )
    if line is None or not line.user.is_active:
        return responder_keywords.availability(message, keyword, arguments, language)
    on = keyword in responder_keywords.ON_WORDS
    reply_language = language if language in settings.RR_LANGUAGES else line.user.language
    with translation.override(reply_language):
        try:
            actions.set_on_shift(actor=line.user, line=line, on_shift=on)
        except ActionRefused as exc:
            return str(exc)
        if on:
            return _(
                "%(network)s: you are on shift. Hotline calls will ring this phone; press 1 "
                "to take one. Reply OFF when you stop."
            ) % {"network": settings.RR_NETWORK_NAME}
        return _(
            "%(network)s: you are off shift. Hotline calls will not ring this phone. "
            "Reply ON when you start again."
        ) % {"network": settings.RR_NETWORK_NAME}


def register_dispatcher_keywords() -> None:
    keywords.register(responder_keywords.ON_WORDS, shift, replace=True)
    keywords.register(responder_keywords.OFF_WORDS, shift, replace=True)

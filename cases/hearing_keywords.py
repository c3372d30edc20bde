"""ACCOMPANY / ACOMPAÑAR: volunteers sign up to go with a family to a hearing by SMS.

``ACCOMPANY`` alone answers with the open dates (code, kind, date, place) and the link
to the sign-up page; ``ACCOMPANY 4821`` signs up for the date with that code. Only a
message from an active responder is an answer; "Acompañar a mi hijo a la corte…" from
anyone else goes on to the hotline as a report.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from cases import hearings
from cases.models import HearingKind
from cases.reminders import KIND_IN_SMS, when_text
from dispatch.actions import responder_language
from dispatch.models import Responder
from messaging import keywords
from messaging.models import InboundMessage

ACCOMPANY_WORDS: dict[str, str | None] = {"ACCOMPANY": "en", "ACOMPAÑAR": "es", "ACOMPANO": "es"}
CODE = re.compile(r"^\s*(\d{4})\s*[.!]?\s*$")
# At most this many dates in one reply, so it stays a few segments long.
LISTED = 3


def _responder(message: InboundMessage) -> Responder | None:
    return Responder.objects.filter(phone_hash=message.sender_hash, active=True).first()


def accompany(  # noqa: PLR0911 - one answer for each situation, in order
    message: InboundMessage, keyword: str, arguments: str, language: str
) -> str | None:
    responder = _responder(message)
    code = CODE.match(arguments)
    if arguments and code is None:
        return None  # words after the keyword: someone telling us something
    if responder is None:
        if code is None and arguments:
            return None
        return _(
            "%(network)s: this number is not registered as a volunteer, so nothing changed."
        ) % {"network": settings.RR_NETWORK_NAME}
    reply_language = (
        language if language in settings.RR_LANGUAGES else responder_language(responder)
    )
    with translation.override(reply_language):
        if not hearings.is_eligible(responder):
            return _(
                "%(network)s: only accompaniment volunteers can sign up for hearings. "
                "Ask your coordinator to add you."
            ) % {"network": settings.RR_NETWORK_NAME}
        link = hearings.volunteer_link(responder)
        if code is None:
            return _list(responder, link)
        hearing = hearings.open_hearing_by_code(code.group(1))
        if hearing is None:
            return _(
                "No open date has the code %(code)s. Nothing changed. Open dates: %(link)s"
            ) % {
                "code": code.group(1),
                "link": link,
            }
        try:
            result = hearings.sign_up(responder=responder, hearing=hearing)
        except hearings.HearingRefused as exc:
            return str(exc)
        values = {
            "what": KIND_IN_SMS[HearingKind(hearing.kind)],
            "when": when_text(hearing),
            "place": hearing.place,
            "link": link,
        }
        if not result.changed:
            return (
                _(
                    "You are already signed up for %(what)s on %(when)s at %(place)s. "
                    "Details or cancel: %(link)s"
                )
                % values
            )
        return (
            _(
                "Thank you: you are signed up for %(what)s on %(when)s at %(place)s. We will "
                "remind you. Details or cancel: %(link)s"
            )
            % values
        )


def _list(responder: Responder, link: str) -> str:
    _own, others = hearings.volunteer_view(responder)
    if not others:
        return _("No dates need volunteers right now. Your dates: %(link)s") % {"link": link}
    lines = [
        f"{item.code}: {item.kind_label}, {when_text(item)}, {item.place}"
        for item in others[:LISTED]
    ]
    return _(
        "Dates that need volunteers:\n%(lines)s\nReply ACCOMPANY and the code to sign up, "
        "or choose here: %(link)s"
    ) % {"lines": "\n".join(lines), "link": link}


def register_keywords() -> None:
    keywords.register(ACCOMPANY_WORDS, accompany)
    keywords.register(ACCOMPANY_WORDS, accompany, takes_arguments=True)

"""What the hotline says, in each language: built-in texts (translated with gettext)
unless a coordinator typed or recorded their own."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from calls.models import PromptKey, VoiceLanguage, VoicePrompt
from calls.script import Play, Say

# Text-to-speech tags and the names callers may say, for the languages that ship.
BUILT_IN_VOICES = {"en": "en-US", "es": "es-US"}
# Named voices for those languages (Amazon Polly through Twilio); the provider's default
# voice may not speak every language well.
BUILT_IN_SPEAKERS = {"en": "Polly.Joanna", "es": "Polly.Lupe"}
BUILT_IN_NAMES = {"en": "English", "es": "Español"}
BUILT_IN_SPOKEN = {
    "en": ["english", "inglés", "ingles"],
    "es": ["español", "espanol", "spanish", "castellano"],
}


@dataclass(frozen=True)
class MenuLanguage:
    code: str
    name: str
    digit: int
    voice: str
    spoken_names: tuple[str, ...]


def translated_languages() -> set[str]:
    return {code for code, _name in settings.LANGUAGES}


def _built_in_text(key: str, **values: object) -> str:
    texts = {
        PromptKey.GREETING: _("You have reached %(network)s."),
        PromptKey.MENU: _("For %(name)s, press %(digit)s."),
        PromptKey.HOLD: _("Please stay on the line. We are connecting you with a volunteer."),
        PromptKey.POSITION: _("You are number %(position)s in line."),
        PromptKey.LEAVE_OPTION: _("To leave a message instead, press 1."),
        PromptKey.VOICEMAIL: _(
            "Please leave a message after the tone: what you see, where, and a number we "
            "can call you back on. Press the pound key when you finish."
        ),
        PromptKey.NO_ONE: _("No volunteer can answer right now."),
        PromptKey.THANKS: _(
            "Thank you. A volunteer will listen to your message and call you back."
        ),
        PromptKey.NO_MESSAGE: _(
            "We did not hear a message. Please call again, or text this number."
        ),
    }
    return texts[PromptKey(key)] % {"network": settings.RR_NETWORK_NAME, **values}


def menu_languages() -> list[MenuLanguage]:
    """The languages the menu offers, in the order of their keys."""
    custom = {row.code: row for row in VoiceLanguage.objects.all()}
    offered: dict[str, MenuLanguage] = {}
    used_digits: set[int] = set()
    for code, row in custom.items():
        if row.enabled and (code in translated_languages() or has_all_prompts(code)):
            offered[code] = MenuLanguage(
                code=code,
                name=row.name,
                digit=row.digit,
                voice=row.voice,
                spoken_names=tuple(
                    word.strip().lower() for word in row.spoken_names.split(",") if word.strip()
                ),
            )
            used_digits.add(row.digit)
    digit = 1
    for code in settings.RR_LANGUAGES:
        if code in custom or code not in BUILT_IN_VOICES:
            continue
        while digit in used_digits:
            digit += 1
        offered[code] = MenuLanguage(
            code=code,
            name=BUILT_IN_NAMES[code],
            digit=digit,
            voice=BUILT_IN_VOICES[code],
            spoken_names=tuple(BUILT_IN_SPOKEN[code]),
        )
        used_digits.add(digit)
    return sorted(offered.values(), key=lambda language: language.digit)


def has_all_prompts(code: str) -> bool:
    present = set(VoicePrompt.objects.filter(language=code).values_list("key", flat=True))
    return present >= {key.value for key in PromptKey}


def voice_for(code: str) -> str:
    return _voice(code)[0]


def _voice(code: str) -> tuple[str, str]:
    """(text-to-speech language tag, the provider's named voice) for a language."""
    row = VoiceLanguage.objects.filter(code=code).first()
    if row is not None:
        return row.voice, row.speaker
    known = code if code in BUILT_IN_VOICES else "en"
    return BUILT_IN_VOICES[known], BUILT_IN_SPEAKERS[known]


def say(text: str, language: str) -> Say:
    voice, speaker = _voice(language)
    return Say(text=text, voice=voice, speaker=speaker)


def prompt(key: str, language: str, **values: object) -> Say | Play:
    """One prompt in ``language``: the coordinator's recording or text if there is
    one, else the built-in text."""
    own = VoicePrompt.objects.filter(language=language, key=key).first()
    if own is not None and own.audio:
        return Play(url=reverse("calls:prompt-audio", args=[own.uuid]))
    if own is not None and own.text:
        return say(_fill(own.text, values), language)
    spoken = language if language in translated_languages() else settings.RR_LANGUAGES[0]
    return say(built_in_text(key, spoken, **values), spoken)


def built_in_text(key: str, language: str, **values: object) -> str:
    """The shipped words of a prompt, in ``language`` if it is translated."""
    spoken = language if language in translated_languages() else settings.RR_LANGUAGES[0]
    with translation.override(spoken):
        return _built_in_text(key, **values)


def _fill(text: str, values: dict[str, object]) -> str:
    """Coordinators write {position}, {digit} or {network} in their own prompts."""
    filled = text.replace("{network}", settings.RR_NETWORK_NAME)
    for name, value in values.items():
        filled = filled.replace("{" + name + "}", str(value))
    return filled


def dispatcher_text(kind: str, language: str, **values: object) -> Say:
    """What a dispatcher's phone says; dispatchers hear the console's language."""
    spoken = language if language in translated_languages() else settings.RR_LANGUAGES[0]
    with translation.override(spoken):
        texts = {
            "offer": _(
                "%(network)s hotline call in %(caller_language)s. Press 1 to take it, or hang up."
            ),
            "connecting": _("Connecting you to the caller."),
            "taken": _("Another dispatcher has taken this call. Thank you."),
            "gone": _("The caller is no longer waiting. Thank you."),
            "not_taken": _("You did not take the call. Goodbye."),
            "caller_gone": _(
                "The caller hung up before you were connected. They are on the list of "
                "missed calls to call back."
            ),
        }
        return say(texts[kind] % {"network": settings.RR_NETWORK_NAME, **values}, spoken)


def sorry_technical_problem() -> list[Say]:
    """What a caller hears when the hotline cannot reach its database: in every
    built-in language, since their choice cannot be read. Reads nothing from it."""
    spoken = []
    for code in settings.RR_LANGUAGES:
        if code not in translated_languages() or code not in BUILT_IN_VOICES:
            continue
        with translation.override(code):
            spoken.append(
                Say(
                    _(
                        "%(network)s is having a technical problem. Please text what you see "
                        "and where to this number, or call again in a few minutes."
                    )
                    % {"network": settings.RR_NETWORK_NAME},
                    voice=BUILT_IN_VOICES[code],
                    speaker=BUILT_IN_SPEAKERS[code],
                )
            )
    return spoken

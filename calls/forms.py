from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from calls.models import CallbackOutcome, VoiceLanguage
from core import phones
from dispatch.forms import ShiftForm

__all__ = ["CallReportForm", "CallbackForm", "LanguageForm", "LineForm", "PromptForm", "ShiftForm"]


class CallbackForm(forms.Form):
    outcome = forms.ChoiceField(
        label=_("How did the call back go?"), choices=CallbackOutcome.choices
    )


class CallReportForm(forms.Form):
    # A random key in the form makes a double submission one report.
    submission = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)
    text = forms.CharField(
        label=_("What the caller describes"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("What, where, when, and whether they saw it themselves."),
    )
    location_text = forms.CharField(
        label=_("Where"),
        max_length=300,
        required=False,
        help_text=_("Street, corner or landmark. Place it on the map from the report page."),
    )
    salute_size = forms.CharField(
        label=_("Size (how many agents, vehicles)"), max_length=300, required=False
    )
    salute_uniform = forms.CharField(label=_("Uniform or agency"), max_length=300, required=False)


class LineForm(forms.Form):
    phone = forms.CharField(
        label=_("Phone for hotline calls"),
        max_length=32,
        help_text=_("Calls to the hotline ring this phone while its dispatcher is on shift."),
    )
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    def clean_phone(self) -> str:
        try:
            return phones.normalize(self.cleaned_data["phone"])
        except phones.InvalidPhoneNumber as exc:
            raise forms.ValidationError(str(exc)) from exc


class PromptForm(forms.Form):
    text = forms.CharField(
        label=_("Your words"),
        max_length=600,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("You may write {position}, {digit} or {network}; they are filled in."),
    )
    audio = forms.FileField(
        label=_("Or a recording (MP3 or WAV, 2 MB at most)"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": "audio/mpeg,audio/wav"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("text", "").strip() and not data.get("audio"):
            raise forms.ValidationError(_("Type the prompt or upload a recording."))
        return data


class LanguageForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = VoiceLanguage
        fields = ["code", "name", "digit", "voice", "spoken_names", "enabled"]
        labels = {
            "code": _("Language code (e.g. pt)"),
            "name": _("Name"),
            "digit": _("Key in the menu (1-8)"),
            "voice": _("Text-to-speech language"),
            "spoken_names": _("Spoken names"),
            "enabled": _("Offer it in the menu"),
        }

    def clean_code(self) -> str:
        code = str(self.cleaned_data["code"]).strip().lower()
        if not code.replace("-", "").isalpha() or len(code) > 8:
            raise forms.ValidationError(_("Use a language code such as pt or ht."))
        return code

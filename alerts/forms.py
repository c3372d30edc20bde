from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from alerts.models import AreaKind, ZipCode
from alerts.subscriptions import AreaSpec
from core import phones
from core.forms import clean_map_point
from core.models import Neighbourhood

RADIUS_CHOICES = [
    (500, _("500 m")),
    (1000, _("1 km")),
    (2000, _("2 km")),
    (3000, _("3 km")),
    (5000, _("5 km")),
    (10000, _("10 km")),
]
MAX_BODY_CHARS = 640


def language_choices() -> list[tuple[str, str]]:
    names = dict(settings.LANGUAGES)
    return [(code, str(names.get(code, code))) for code in settings.RR_LANGUAGES]


class ComposeForm(forms.Form):
    radius_m = forms.TypedChoiceField(
        label=_("Send to subscribers within"),
        choices=RADIUS_CHOICES,
        coerce=int,
        initial=2000,
        help_text=_(
            "Measured from the incident's place. Subscribers whose areas reach into this "
            "circle get it."
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = dict(settings.LANGUAGES)
        for code in settings.RR_LANGUAGES:
            self.fields[f"body_{code}"] = forms.CharField(
                label=_("Message in %(language)s") % {"language": names.get(code, code)},
                max_length=MAX_BODY_CHARS,
                widget=forms.Textarea(attrs={"rows": 4, "lang": code, "data-segments": ""}),
            )

    def body_fields(self) -> list[forms.BoundField]:
        return [self[f"body_{code}"] for code in settings.RR_LANGUAGES]

    def bodies(self) -> dict[str, str]:
        return {code: self.cleaned_data[f"body_{code}"] for code in settings.RR_LANGUAGES}


class TemplateForm(forms.Form):
    body = forms.CharField(
        max_length=MAX_BODY_CHARS, widget=forms.Textarea(attrs={"rows": 4, "data-segments": ""})
    )


class JoinForm(forms.Form):
    """The public sign-up: a number, a language and one area."""

    phone = forms.CharField(
        label=_("Mobile phone number"),
        max_length=32,
        help_text=_(
            "We text you a code to confirm. The number is stored encrypted and used only "
            "for alerts."
        ),
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
    )
    language = forms.ChoiceField(label=_("Language for the alerts"), choices=language_choices)
    neighbourhood = forms.ModelChoiceField(
        label=_("Neighbourhood"),
        queryset=Neighbourhood.objects.order_by("name"),
        required=False,
        empty_label=_("(choose one)"),
    )
    zip_code = forms.CharField(label=_("Or a ZIP code"), required=False, max_length=10)
    lat = forms.CharField(required=False, max_length=32, widget=forms.HiddenInput)
    lng = forms.CharField(required=False, max_length=32, widget=forms.HiddenInput)
    radius_m = forms.TypedChoiceField(
        label=_("Distance around the pin"),
        choices=RADIUS_CHOICES[:5],
        coerce=int,
        initial=1000,
        required=False,
    )
    consent = forms.BooleanField(
        label=_(
            "I agree to receive alert text messages. Message and data rates may apply. "
            "Reply STOP to end."
        ),
    )

    def clean_phone(self) -> str:
        try:
            number = phones.normalize(self.cleaned_data["phone"])
        except phones.InvalidPhoneNumber as exc:
            raise forms.ValidationError(_("That does not look like a phone number.")) from exc
        if not phones.is_local(number):
            raise forms.ValidationError(_("Alerts can only be sent to numbers in this country."))
        return number

    def clean_zip_code(self) -> ZipCode | None:
        raw = (self.cleaned_data.get("zip_code") or "").strip()
        if not raw:
            return None
        code = ZipCode.objects.filter(code=raw[:5]).first()
        if code is None:
            raise forms.ValidationError(_("This network does not send alerts for that ZIP code."))
        return code

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        areas: list[AreaSpec] = []
        if data.get("neighbourhood"):
            areas.append(AreaSpec(AreaKind.NEIGHBOURHOOD, neighbourhood=data["neighbourhood"]))
        if data.get("zip_code"):
            areas.append(AreaSpec(AreaKind.ZIP, zip_code=data["zip_code"]))
        point = clean_map_point(
            self, data, outside=str(_("The pin is outside the area this network covers."))
        )
        if point is not None:
            areas.append(
                AreaSpec(AreaKind.RADIUS, point=point, radius_m=data.get("radius_m") or 1000)
            )
        if not areas and not self.errors:
            self.add_error(None, _("Choose a neighbourhood, a ZIP code or a point on the map."))
        data["areas"] = areas
        return data


class ConfirmForm(forms.Form):
    phone = forms.CharField(max_length=32, widget=forms.HiddenInput)
    code = forms.CharField(
        label=_("Code from the text message"),
        max_length=6,
        min_length=6,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "pattern": "[0-9]{6}"}
        ),
    )

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core import phones
from core.forms import clean_map_point
from intake.photos import InvalidPhoto, clean_photo

MAX_AGE = timedelta(days=7)
FUTURE_TOLERANCE = timedelta(minutes=10)


class WebReportForm(forms.Form):
    text = forms.CharField(
        label=_("What is happening?"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("What you see: people, vehicles, what they are doing."),
    )
    location_text = forms.CharField(
        label=_("Where?"),
        required=False,
        max_length=300,
        help_text=_("Street and cross street, a business or a landmark."),
    )
    lat = forms.CharField(required=False, max_length=32, widget=forms.HiddenInput)
    lng = forms.CharField(required=False, max_length=32, widget=forms.HiddenInput)
    observed_at = forms.DateTimeField(
        label=_("When did you see it?"),
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_("Leave empty if it is happening now."),
    )
    salute_size = forms.CharField(
        label=_("How many?"),
        required=False,
        max_length=200,
        help_text=_("Officers, vehicles."),
    )
    salute_activity = forms.CharField(
        label=_("What are they doing?"),
        required=False,
        max_length=500,
    )
    salute_uniform = forms.CharField(
        label=_("Uniforms or markings"),
        required=False,
        max_length=300,
        help_text=_("Words on vests or jackets, badges, plain clothes."),
    )
    salute_equipment = forms.CharField(
        label=_("Vehicles and equipment"),
        required=False,
        max_length=300,
        help_text=_("Vehicle type, colour, plates if safe to see."),
    )
    callback = forms.CharField(
        label=_("Phone number for a call back (optional)"),
        required=False,
        max_length=32,
        help_text=_("Only dispatchers can see it, to call you back."),
    )
    photo = forms.FileField(
        label=_("Photo (optional)"),
        required=False,
        help_text=_("Location and camera details are removed from the photo before it is stored."),
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    # Makes a double submission one report. A missing or damaged token is replaced
    # rather than refused: the reporter should never see an error about it.
    submission = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def clean_submission(self) -> uuid.UUID:
        try:
            return uuid.UUID(str(self.cleaned_data.get("submission") or ""))
        except ValueError:
            return uuid.uuid4()

    def clean_callback(self) -> str:
        raw = str(self.cleaned_data.get("callback") or "").strip()
        if not raw:
            return ""
        try:
            return phones.normalize(raw)
        except phones.InvalidPhoneNumber as exc:
            raise forms.ValidationError(
                _("That does not look like a phone number. Check it or leave it empty.")
            ) from exc

    def clean_observed_at(self) -> datetime:
        value: datetime | None = self.cleaned_data.get("observed_at")
        now = timezone.now()
        if value is None:
            return now
        if value > now + FUTURE_TOLERANCE:
            raise forms.ValidationError(_("That time is in the future."))
        if value < now - MAX_AGE:
            raise forms.ValidationError(
                _("That is more than a week ago. Call the hotline to report past events.")
            )
        return min(value, now)

    def clean_photo(self) -> Any:
        upload = self.cleaned_data.get("photo")
        if not upload:
            return None
        try:
            return clean_photo(upload)
        except InvalidPhoto as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        point = clean_map_point(
            self,
            data,
            outside=str(
                _(
                    "The pin is outside the area this network covers. Move it, or remove "
                    "it and describe the place in words."
                )
            ),
        )
        data["point"] = point
        if point is None and not (data.get("location_text") or "").strip() and not self.errors:
            self.add_error(
                "location_text", _("Tell us where: describe the place or put a pin on the map.")
            )
        return data

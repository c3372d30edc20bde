from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from core.geo import InvalidCoordinates, Point
from core.models import Neighbourhood
from dispatch.models import LANGUAGE_BITS, Finding, Responder, ResponderRole

LANGUAGE_NAMES = {
    "en": _("English"),
    "es": _("Spanish"),
    "pt": _("Portuguese"),
    "ko": _("Korean"),
    "zh": _("Chinese"),
    "vi": _("Vietnamese"),
    "fr": _("French"),
    "ht": _("Haitian Creole"),
}


class ResponderForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    phone = forms.CharField(label=_("Mobile phone"), max_length=32)
    roles = forms.MultipleChoiceField(
        label=_("Roles"), choices=ResponderRole.choices, widget=forms.CheckboxSelectMultiple
    )
    languages = forms.MultipleChoiceField(
        label=_("Languages"),
        choices=[(code, LANGUAGE_NAMES[code]) for code in LANGUAGE_BITS],
        widget=forms.CheckboxSelectMultiple,
    )
    home_neighbourhood = forms.ModelChoiceField(
        label=_("Home area"),
        queryset=Neighbourhood.objects.order_by("name"),
        required=False,
        help_text=_("Used to find them when they have not shared a location."),
    )
    notes = forms.CharField(
        label=_("Notes"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )
    active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    @classmethod
    def for_responder(cls, responder: Responder) -> ResponderForm:
        return cls(
            initial={
                "name": responder.name,
                "phone": responder.phone,
                "roles": [r.value for r in responder.role_list],
                "languages": responder.language_list,
                "home_neighbourhood": responder.home_neighbourhood,
                "notes": responder.notes,
                "active": responder.active,
            }
        )


class TrainingForm(forms.Form):
    name = forms.CharField(label=_("Training"), max_length=120)
    completed_on = forms.DateField(
        label=_("Completed on"), widget=forms.DateInput(attrs={"type": "date"})
    )
    expires_on = forms.DateField(
        label=_("Expires on"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )


class ShiftForm(forms.Form):
    starts_at = forms.DateTimeField(
        label=_("Starts"),
        input_formats=["%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    ends_at = forms.DateTimeField(
        label=_("Ends"),
        input_formats=["%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


class ImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "Columns: name, phone, roles, languages, neighbourhood, notes. Roles and languages "
            "separated by commas or semicolons (verifier; legal_observer — en; es)."
        ),
    )

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > 5 * 1024 * 1024:
            raise forms.ValidationError(_("The file is larger than 5 MB."))
        try:
            return str(upload.read().decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise forms.ValidationError(_("Save the file as UTF-8 CSV.")) from exc


class NeededForm(forms.Form):
    count = forms.IntegerField(label=_("Verifiers needed"), min_value=1, max_value=10)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input (Django's documented pattern)."""

    def clean(self, data: Any, initial: Any = None) -> Any:
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return single(data, initial)


class FieldReportForm(forms.Form):
    finding = forms.ChoiceField(
        label=_("What did you find?"),
        choices=Finding.choices,
        required=False,
        widget=forms.RadioSelect,
    )
    officers = forms.IntegerField(
        label=_("Officers (how many)"), required=False, min_value=0, max_value=500
    )
    vehicles = forms.IntegerField(
        label=_("Vehicles (how many)"), required=False, min_value=0, max_value=200
    )
    detentions = forms.IntegerField(
        label=_("People detained"), required=False, min_value=0, max_value=200
    )
    agencies = forms.CharField(
        label=_("Agencies"),
        required=False,
        max_length=300,
        help_text=_("What was written on uniforms and vehicles."),
    )
    salute_size = forms.CharField(
        label=_("How many people are involved?"), required=False, max_length=200
    )
    salute_activity = forms.CharField(
        label=_("What are they doing?"), required=False, max_length=500
    )
    salute_uniform = forms.CharField(label=_("Uniforms"), required=False, max_length=300)
    salute_equipment = forms.CharField(
        label=_("Vehicles and equipment"), required=False, max_length=300
    )
    salute_location = forms.CharField(label=_("Exact place"), required=False, max_length=300)
    salute_time = forms.CharField(label=_("When did it start?"), required=False, max_length=200)
    notes = forms.CharField(
        label=_("Notes"), required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 4})
    )


class EvidenceForm(forms.Form):
    uploads = MultipleFileField(
        label=_("Photos and videos"),
        widget=MultipleFileInput(
            attrs={
                "accept": "image/jpeg,image/png,image/webp,video/mp4,video/quicktime",
                "multiple": True,
            }
        ),
        help_text=_("Up to three at a time. Location data is removed from the copies others see."),
    )


class LocationForm(forms.Form):
    lat = forms.CharField(max_length=32)
    lng = forms.CharField(max_length=32)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            data["point"] = Point.parse(data.get("lat", ""), data.get("lng", ""))
        except InvalidCoordinates as exc:
            raise forms.ValidationError(str(exc)) from exc
        return data

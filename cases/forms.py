from __future__ import annotations

import re
from datetime import date
from typing import Any

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from cases import selectors
from cases.models import (
    CaseStatus,
    Facility,
    FundKind,
    LegalStage,
    PartnerOrganisation,
    ReferralStatus,
)

DATETIME_FORMAT = "%Y-%m-%dT%H:%M"
A_NUMBER = re.compile(r"^A?-?\s*(\d{3})-?\s*(\d{3})-?\s*(\d{2,3})$", re.IGNORECASE)
# Runs of 13-19 digits, spaces or dashes allowed between them: what a card number looks like.
CARD_LIKE = re.compile(r"(?:\d[ -]?){12,18}\d")


def _datetime_field(label: Any, *, required: bool = True) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        required=required,
        input_formats=[DATETIME_FORMAT],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_FORMAT),
        error_messages={"invalid": _("Enter a date and time.")},
    )


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def refuse_card_numbers(text: str) -> str:
    """Card data is never stored: a number that looks like a payment card is refused."""
    for match in CARD_LIKE.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and _luhn(digits):
            raise forms.ValidationError(
                _("This looks like a card number. Card details are never written here.")
            )
    return text


def normalise_a_number(raw: str) -> str:
    """A-numbers are 8 or 9 digits, written A123-456-789; kept as A + 9 digits."""
    raw = raw.strip()
    if not raw:
        return ""
    match = A_NUMBER.match(raw)
    if not match:
        raise forms.ValidationError(_("An A-number has 8 or 9 digits, like A123-456-789."))
    digits = "".join(match.groups())
    return "A" + digits.zfill(9)


class PersonForm(forms.Form):
    person_name = forms.CharField(label=_("Name of the detained person"), max_length=200)
    person_birth_date = forms.DateField(
        label=_("Date of birth"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": _("Enter a date as YYYY-MM-DD.")},
    )
    a_number = forms.CharField(
        label=_("A-number"),
        required=False,
        max_length=20,
        help_text=_("The alien registration number, if known (A123-456-789)."),
    )
    detained_at = _datetime_field(_("Detained at (date and time)"))
    detained_place = forms.CharField(
        label=_("Where they were detained"), required=False, max_length=300
    )

    def clean_a_number(self) -> str:
        return normalise_a_number(self.cleaned_data.get("a_number", ""))

    def clean_person_birth_date(self) -> date | None:
        born: date | None = self.cleaned_data.get("person_birth_date")
        if born is not None and born > timezone.localdate():
            raise forms.ValidationError(_("The date of birth cannot be in the future."))
        return born

    def clean_detained_at(self) -> Any:
        detained = self.cleaned_data.get("detained_at")
        if detained is not None and detained > timezone.now():
            raise forms.ValidationError(_("The detention cannot be in the future."))
        return detained


class OpenCaseForm(PersonForm):
    facility = forms.ModelChoiceField(
        label=_("Where they are held now"),
        queryset=Facility.objects.none(),
        required=False,
        empty_label=_("Not known yet"),
    )
    assigned_to = forms.ModelChoiceField(
        label=_("Family support"),
        queryset=User.objects.none(),
        required=False,
        empty_label=_("Nobody yet"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["facility"].queryset = selectors.active_facilities()  # type: ignore[attr-defined]
        self.fields["assigned_to"].queryset = selectors.case_workers()  # type: ignore[attr-defined]


class HandlingForm(forms.Form):
    legal_stage = forms.ChoiceField(label=_("Legal help"), choices=LegalStage.choices)
    consulted_at = _datetime_field(_("First consultation with a lawyer"), required=False)
    assigned_to = forms.ModelChoiceField(
        label=_("Family support"),
        queryset=User.objects.none(),
        required=False,
        empty_label=_("Nobody yet"),
    )
    status = forms.ChoiceField(
        label=_("Status"),
        choices=CaseStatus.choices,
        help_text=_("Closing starts the retention period; the case is destroyed when it ends."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assigned_to"].queryset = selectors.case_workers()  # type: ignore[attr-defined]


class TransferForm(forms.Form):
    facility = forms.ModelChoiceField(
        label=_("Moved to"), queryset=Facility.objects.none(), empty_label=None
    )
    moved_at = _datetime_field(_("When"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["facility"].queryset = selectors.active_facilities()  # type: ignore[attr-defined]


class ContactForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    relation = forms.CharField(
        label=_("Relation to the detained person"), max_length=80, required=False
    )
    phone = forms.CharField(label=_("Phone"), max_length=32, required=False)
    language = forms.ChoiceField(label=_("Language for messages"), choices=())
    sms_consent = forms.BooleanField(
        label=_("Agrees to receive text updates (hearing reminders)"), required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = settings.LANGUAGES  # type: ignore[attr-defined]

    def clean_phone(self) -> str:
        from core import phones

        raw = self.cleaned_data.get("phone", "").strip()
        if not raw:
            return ""
        try:
            return phones.normalize(raw)
        except ValueError:
            raise forms.ValidationError(_("Enter a phone number, like 555 123 4567.")) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("sms_consent") and not data.get("phone"):
            self.add_error("phone", _("Text updates need a phone number."))
        return data


class ReferralForm(forms.Form):
    organisation = forms.ModelChoiceField(
        label=_("Partner organisation"), queryset=PartnerOrganisation.objects.none()
    )
    notes = forms.CharField(
        label=_("Notes for the referral"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["organisation"].queryset = selectors.active_organisations()  # type: ignore[attr-defined]

    def clean_notes(self) -> str:
        return refuse_card_numbers(self.cleaned_data.get("notes", ""))


class ReferralStatusForm(forms.Form):
    status = forms.ChoiceField(label=_("Referral status"), choices=ReferralStatus.choices)


class FundForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=FundKind.choices)
    purpose = forms.CharField(
        label=_("What it is for"),
        required=False,
        max_length=300,
        help_text=_("Amounts only: never card or bank details."),
    )
    requested = forms.DecimalField(
        label=_("Requested"), min_value=0, max_digits=10, decimal_places=2, initial=0
    )
    raised = forms.DecimalField(
        label=_("Raised"), min_value=0, max_digits=10, decimal_places=2, initial=0
    )
    paid = forms.DecimalField(
        label=_("Paid"), min_value=0, max_digits=10, decimal_places=2, initial=0
    )

    def clean_purpose(self) -> str:
        return refuse_card_numbers(self.cleaned_data.get("purpose", ""))


class NoteForm(forms.Form):
    body = forms.CharField(
        label=_("Note"), max_length=5000, widget=forms.Textarea(attrs={"rows": 3})
    )

    def clean_body(self) -> str:
        body = refuse_card_numbers(self.cleaned_data.get("body", "")).strip()
        if not body:
            raise forms.ValidationError(_("Write something first."))
        return body


class TaskForm(forms.Form):
    title = forms.CharField(label=_("Task"), max_length=300)
    assignee = forms.ModelChoiceField(
        label=_("Who"), queryset=User.objects.none(), required=False, empty_label=_("Nobody yet")
    )
    due_on = forms.DateField(
        label=_("Due"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": _("Enter a date as YYYY-MM-DD.")},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = selectors.case_workers()  # type: ignore[attr-defined]

    def clean_title(self) -> str:
        return refuse_card_numbers(self.cleaned_data.get("title", ""))


class FacilityForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Facility
        fields = ["name", "address", "phone", "notes", "active"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}


class OrganisationForm(forms.ModelForm):  # type: ignore[type-arg]
    languages = forms.MultipleChoiceField(
        label=_("Languages"), choices=(), widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = PartnerOrganisation
        fields = ["name", "languages", "capacity", "contact", "active"]
        widgets = {"contact": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from dispatch.forms import LANGUAGE_NAMES

        super().__init__(*args, **kwargs)
        self.fields["languages"].choices = list(LANGUAGE_NAMES.items())  # type: ignore[attr-defined]
        if self.instance.pk:
            self.initial["languages"] = self.instance.language_list

    def clean_languages(self) -> str:
        return ",".join(self.cleaned_data.get("languages") or [])


class ExportForm(forms.Form):
    format = forms.ChoiceField(
        label=_("Format"), choices=[("pdf", "PDF"), ("csv", "CSV")], initial="pdf"
    )
    reason = forms.CharField(
        label=_("Why, and for whom"),
        min_length=10,
        max_length=500,
        help_text=_("Recorded with the export, e.g. which legal partner asked and why."),
        widget=forms.Textarea(attrs={"rows": 2}),
    )

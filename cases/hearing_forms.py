"""The hearing form: a date and a time in the network's time zone, as two fields that
phones give good pickers for."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cases.forms import refuse_card_numbers
from cases.hearings import HearingData
from cases.models import Hearing, HearingKind
from cases.reminders import network_zone
from dispatch.forms import LANGUAGE_NAMES


class HearingForm(forms.Form):
    kind = forms.ChoiceField(label=_("What"), choices=HearingKind.choices)
    day = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    at = forms.TimeField(label=_("Time"), widget=forms.TimeInput(attrs={"type": "time"}))
    place = forms.CharField(
        label=_("Where"),
        max_length=300,
        help_text=_("The court or ICE office and its address. Volunteers see this."),
    )
    language_needed = forms.ChoiceField(
        label=_("Language a volunteer should speak"),
        choices=[("", _("Any"))] + [(code, name) for code, name in LANGUAGE_NAMES.items()],
        required=False,
    )
    accompaniment_wanted = forms.BooleanField(
        label=_("Ask volunteers to go along"), required=False, initial=True
    )
    notes = forms.CharField(
        label=_("Notes (only the case team sees these)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args: Any, hearing: Hearing | None = None, **kwargs: Any) -> None:
        self.hearing = hearing
        if hearing is not None and "initial" not in kwargs:
            local = hearing.starts_at.astimezone(network_zone())
            kwargs["initial"] = {
                "kind": hearing.kind,
                "day": local.date(),
                "at": local.time().replace(second=0, microsecond=0),
                "place": hearing.place,
                "language_needed": hearing.language_needed,
                "accompaniment_wanted": hearing.accompaniment_wanted,
                "notes": hearing.notes,
            }
        super().__init__(*args, **kwargs)

    def clean_notes(self) -> str:
        return refuse_card_numbers(self.cleaned_data.get("notes", ""))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        day, at = data.get("day"), data.get("at")
        if day is None or at is None:
            return data
        starts_at = datetime.combine(day, at.replace(second=0, microsecond=0), network_zone())
        moved = self.hearing is None or starts_at != self.hearing.starts_at
        if moved and starts_at <= timezone.now():
            self.add_error("day", _("The date and time must be in the future."))
        data["starts_at"] = starts_at
        return data

    def to_data(self) -> HearingData:
        data = self.cleaned_data
        return HearingData(
            kind=data["kind"],
            starts_at=data["starts_at"],
            place=data["place"],
            notes=data.get("notes") or "",
            language_needed=data.get("language_needed") or "",
            accompaniment_wanted=bool(data.get("accompaniment_wanted")),
        )


class CalendarForm(forms.Form):
    """The calendar's range: a start date and a week or a month."""

    start = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    span = forms.ChoiceField(
        label=_("Show"),
        choices=[("week", _("A week")), ("month", _("A month"))],
        required=False,
    )
    cancelled = forms.BooleanField(label=_("Include cancelled"), required=False)

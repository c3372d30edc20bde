from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from core.areas import OutsideServiceArea, locate
from core.geo import InvalidCoordinates, Point
from core.models import Neighbourhood
from incidents.models import Incident, IncidentStatus, Level
from intake.models import Triage


def choice_field(form: forms.Form, name: str) -> forms.ChoiceField:
    field = form.fields[name]
    if not isinstance(field, forms.ChoiceField):
        raise TypeError(f"{name} is not a choice field")
    return field


REASON_WIDGET = forms.Textarea(attrs={"rows": 2, "maxlength": 1000})


class StatusForm(forms.Form):
    status = forms.ChoiceField(label=_("New status"))
    reason = forms.CharField(label=_("Reason"), max_length=1000, widget=REASON_WIDGET)

    def __init__(self, *args: Any, incident: Incident, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice_field(self, "status").choices = [
            (s.value, s.label) for s in incident.allowed_statuses()
        ]

    @property
    def cleaned_status(self) -> IncidentStatus:
        return IncidentStatus(self.cleaned_data["status"])


class LevelForm(forms.Form):
    level = forms.ChoiceField(label=_("Level"), choices=Level.choices)
    reason = forms.CharField(label=_("Reason"), max_length=1000, widget=REASON_WIDGET)


class MergeForm(forms.Form):
    target = forms.ChoiceField(label=_("Merge into"))
    reason = forms.CharField(label=_("Reason"), max_length=1000, widget=REASON_WIDGET)

    def __init__(self, *args: Any, candidates: list[Incident], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.candidates = {str(c.uuid): c for c in candidates}
        choice_field(self, "target").choices = [
            (str(c.uuid), incident_choice_label(c)) for c in candidates
        ]

    def target_incident(self) -> Incident:
        return self.candidates[self.cleaned_data["target"]]


class MoveReportForm(forms.Form):
    incident = forms.ChoiceField(label=_("Attach to incident"))
    reason = forms.CharField(label=_("Reason (optional)"), required=False, max_length=1000)

    def __init__(self, *args: Any, candidates: list[Incident], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.candidates = {str(c.uuid): c for c in candidates}
        choice_field(self, "incident").choices = [
            (str(c.uuid), incident_choice_label(c)) for c in candidates
        ]

    def target_incident(self) -> Incident:
        return self.candidates[self.cleaned_data["incident"]]


class SplitReportForm(forms.Form):
    reason = forms.CharField(label=_("Reason (optional)"), required=False, max_length=1000)


class TriageForm(forms.Form):
    triage = forms.ChoiceField(label=_("Triage"), choices=Triage.choices)


class PlaceReportForm(forms.Form):
    """A location from the map (latitude and longitude) or, failing that, a neighbourhood."""

    lat = forms.CharField(label=_("Latitude"), required=False, max_length=32)
    lng = forms.CharField(label=_("Longitude"), required=False, max_length=32)
    neighbourhood = forms.ModelChoiceField(
        label=_("or a neighbourhood"),
        queryset=Neighbourhood.objects.order_by("name"),
        required=False,
        to_field_name="slug",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        lat, lng = (data.get("lat") or "").strip(), (data.get("lng") or "").strip()
        hood: Neighbourhood | None = data.get("neighbourhood")
        point: Point | None = None
        if lat or lng:
            try:
                point = Point.parse(lat, lng)
                locate(point)
            except (InvalidCoordinates, OutsideServiceArea) as exc:
                raise forms.ValidationError(str(exc)) from exc
        elif hood is not None:
            point = Point(hood.label_lat, hood.label_lng)
        else:
            raise forms.ValidationError(_("Pick a point on the map or choose a neighbourhood."))
        data["point"] = point
        return data


def incident_choice_label(incident: Incident) -> str:
    where = incident.neighbourhood.name if incident.neighbourhood else incident.location_text
    return f"#{incident.short_id} · {where or _('unnamed place')} · {incident.get_status_display()}"

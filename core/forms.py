"""Form pieces shared by the public pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.areas import OutsideServiceArea, locate
from core.geo import InvalidCoordinates, Point
from core.models import AuditAction


def clean_map_point(form: forms.Form, data: dict[str, Any], *, outside: str) -> Point | None:
    """The pin a person put on the map (hidden ``lat``/``lng`` fields), checked to be a
    real position inside the service area; errors go on the form. None when there is no
    pin or it is refused."""
    lat, lng = (data.get("lat") or "").strip(), (data.get("lng") or "").strip()
    if not (lat or lng):
        return None
    try:
        point = Point.parse(lat, lng)
        locate(point)
    except InvalidCoordinates:
        form.add_error(None, _("The map position is not valid. Place the pin again."))
        return None
    except OutsideServiceArea:
        form.add_error(None, outside)
        return None
    return point


class AuditFilterForm(forms.Form):
    """The coordinators' audit search (``/audit/``); every field may stay empty."""

    actor = forms.CharField(label=gettext_lazy("Who (username)"), required=False, max_length=150)
    action = forms.ChoiceField(
        label=gettext_lazy("What"),
        required=False,
        choices=[("", gettext_lazy("Any")), *AuditAction.choices],
    )
    target_type = forms.CharField(label=gettext_lazy("Record type"), required=False, max_length=40)
    target_id = forms.CharField(label=gettext_lazy("Record id"), required=False, max_length=64)
    since = forms.DateField(
        label=gettext_lazy("From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": gettext_lazy("Enter a date as YYYY-MM-DD.")},
    )
    until = forms.DateField(
        label=gettext_lazy("To"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": gettext_lazy("Enter a date as YYYY-MM-DD.")},
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", _("The end date is before the start date."))
        return data

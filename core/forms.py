"""Form pieces shared by the public pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext as _

from core.areas import OutsideServiceArea, locate
from core.geo import InvalidCoordinates, Point


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

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import formats, timezone
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def clock(value: datetime | None) -> str:
    """ "14:05" today, "Nov 27, 14:05" on another day, in the network's time zone."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    time_text = formats.time_format(local, "H:i")
    if local.date() == timezone.localdate():
        return time_text
    return f"{formats.date_format(local, 'M j')}, {time_text}"


@register.filter
def km(metres: float | int | None) -> str:
    if metres is None:
        return "–"  # noqa: RUF001 - the typographic dash shown for "none"
    return f"{metres / 1000:.1f} km"


@register.filter
def duration(seconds: int | None) -> str:
    """ "45 s", "12 min", "2 h 5 min": for estimates, rounded up to what a person reads."""
    if seconds is None:
        return ""
    if seconds < 60:
        return _("%(n)d s") % {"n": max(0, seconds)}
    minutes = -(-seconds // 60)
    if minutes < 60:
        return _("%(n)d min") % {"n": minutes}
    return _("%(h)d h %(m)d min") % {"h": minutes // 60, "m": minutes % 60}

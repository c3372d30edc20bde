from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import formats, timezone

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

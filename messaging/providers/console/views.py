"""The test phone: text the hotline as any number and read the replies, offline.

It exists only while the console provider is active: with Twilio every page is a 404."""

from __future__ import annotations

import functools
import secrets
import uuid
from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods

from core import phones
from messaging.actions import receive_sms
from messaging.selectors import conversation_with

PROVIDER = "console"
SESSION_KEY = "test_phone_number"

View = Callable[..., HttpResponse]


def console_provider_only(view: View) -> View:
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if settings.RR_SMS_PROVIDER != PROVIDER:
            raise Http404("The test phone exists only with the console provider.")
        return view(request, *args, **kwargs)

    return wrapper


class TestMessageForm(forms.Form):
    number = forms.CharField(label=_("Send as number"), max_length=32)
    body = forms.CharField(
        label=_("Message"),
        required=False,
        max_length=1600,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean_number(self) -> str:
        try:
            return phones.normalize(self.cleaned_data["number"])
        except phones.InvalidPhoneNumber as exc:
            raise forms.ValidationError(str(exc)) from exc


def fictional_number() -> str:
    """A number from the 555-01XX block, which North American carriers never assign."""
    return f"+1510555{100 + secrets.randbelow(100):04d}"


def _number(request: HttpRequest) -> str:
    number = request.session.get(SESSION_KEY)
    if not number:
        number = fictional_number()
        request.session[SESSION_KEY] = number
    return str(number)


def _context(request: HttpRequest, form: TestMessageForm | None = None) -> dict[str, object]:
    number = _number(request)
    return {
        "form": form or TestMessageForm(initial={"number": number}),
        "number": number,
        "conversation": conversation_with(phones.phone_hash(number), provider=PROVIDER),
        "hotline": settings.RR_HOTLINE_NUMBER,
    }


@console_provider_only
@login_required
@permission_required("messaging.use_test_phone", raise_exception=True)
@require_http_methods(["GET", "POST"])
def test_phone(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = TestMessageForm(request.POST)
        if not form.is_valid():
            return render(request, "messaging/test_phone.html", _context(request, form), status=422)
        number = form.cleaned_data["number"]
        request.session[SESSION_KEY] = number
        receive_sms(
            provider=PROVIDER,
            provider_sid=f"CON{uuid.uuid4().hex}",
            sender=number,
            recipient=settings.RR_HOTLINE_NUMBER,
            body=form.cleaned_data["body"],
        )
        return redirect("test-phone:phone")
    return render(request, "messaging/test_phone.html", _context(request))


@console_provider_only
@login_required
@permission_required("messaging.use_test_phone", raise_exception=True)
@require_GET
def conversation(request: HttpRequest) -> HttpResponse:
    """The message list alone, which the page refreshes while it is open."""
    return render(request, "messaging/test_phone.html#conversation", _context(request))


@console_provider_only
@login_required
@permission_required("messaging.use_test_phone", raise_exception=True)
@require_http_methods(["POST"])
def new_number(request: HttpRequest) -> HttpResponse:
    current = request.session.get(SESSION_KEY)
    number = fictional_number()
    while number == current:
        number = fictional_number()
    request.session[SESSION_KEY] = number
    return redirect("test-phone:phone")

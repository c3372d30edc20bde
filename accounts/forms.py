"""Forms for the MFA step and re-authentication, on top of allauth's."""

from __future__ import annotations

from typing import Any

from allauth.mfa.adapter import get_adapter
from allauth.mfa.base.forms import AuthenticateForm
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.forms import ActivateTOTPForm as AllauthActivateTOTPForm
from django import forms
from django.contrib.auth.forms import SetPasswordForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts import mfa

CODE_ATTRS = {
    "autocomplete": "one-time-code",
    "inputmode": "numeric",
    "autocapitalize": "off",
    "spellcheck": "false",
    "maxlength": "16",
}


class ActivateTOTPForm(AllauthActivateTOTPForm):  # type: ignore[misc]
    """allauth's form, with a labelled numeric one-time-code input."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["code"]
        field.label = _("Code from your authenticator app")
        field.widget.attrs.update({**CODE_ATTRS, "placeholder": ""})
        field.help_text = _("Six digits; a new code appears every 30 seconds.")

    def clean_code(self) -> str:
        code = str(super().clean_code())
        # The code that confirmed the app is spent: it cannot log in afterwards.
        step = mfa.matching_step(self.secret, code)
        if step is not None:
            mfa.accept_totp_step(self.user, step)
        return code


class CodeForm(AuthenticateForm):  # type: ignore[misc]
    """A TOTP code or a recovery code. allauth checks the code (and marks a recovery
    code used); a TOTP code must also be of a time step not used before
    (``accounts.mfa.accept_totp_step``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["code"]
        field.label = _("Code from your authenticator app, or a recovery code")
        field.widget.attrs.update({**CODE_ATTRS, "placeholder": ""})

    def clean_code(self) -> str:
        code = str(self.cleaned_data.get("code", "")).strip()
        totp = Authenticator.objects.filter(user=self.user, type=Authenticator.Type.TOTP).first()
        step = mfa.matching_totp_step(totp, code) if totp is not None else None
        if step is not None and not mfa.accept_totp_step(self.user, step):
            raise get_adapter().validation_error("incorrect_code")
        self.cleaned_data["code"] = code
        try:
            return str(super().clean_code())
        except ValidationError:
            raise
        except Exception:
            # allauth marks a used TOTP code in the cache; with the cache down that
            # raises. The step accepted above (in the database) already makes the code
            # single-use, so a valid TOTP code still signs in; anything else is refused.
            if step is None or totp is None:
                raise
            totp.user = self.user
            self.authenticator = totp
            return code


class PasswordForm(forms.Form):
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class ResetFactorsForm(forms.Form):
    """The coordinator's confirmation before removing someone's second factors."""

    confirmed = forms.BooleanField(
        required=True,
        label=_("I have confirmed, by voice or in person, that I am talking to this person."),
        error_messages={"required": _("Confirm who you are talking to first.")},
    )


class NewPasswordForm(SetPasswordForm):  # type: ignore[type-arg]
    """One's own new password, twice. A field with errors names them for a screen
    reader (``aria-describedby``, beside its rules) and says it is invalid."""

    def full_clean(self) -> None:
        super().full_clean()
        for name in self.errors:
            if name not in self.fields:
                continue
            auto_id = self[name].auto_id
            described = f"{auto_id}_error"
            if self.fields[name].help_text:
                described += f" {auto_id}_helptext"
            self.fields[name].widget.attrs.update(
                {"aria-invalid": "true", "aria-describedby": described}
            )

"""Staff accounts. Reporters, callers and subscribers never have one."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    COORDINATOR = "coordinator", _("Coordinator")
    DISPATCHER = "dispatcher", _("Dispatcher")
    VERIFIER = "verifier", _("Verifier")
    FAMILY_SUPPORT = "family_support", _("Family support")


class User(AbstractUser):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VERIFIER)
    language = models.CharField(
        max_length=8,
        default=settings.LANGUAGE_CODE,
        help_text=_("Language of the pages and messages this person sees."),
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role__in=[choice.value for choice in Role]),
                name="user_role_valid",
            )
        ]

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.get_username()

    def has_role(self, *roles: Role) -> bool:
        return self.is_active and self.role in roles


class TOTPStep(models.Model):
    """The last TOTP time step a person's code was accepted for (``accounts.mfa``): a code
    of that step or an earlier one is refused, so each code works once, in every web
    process, whatever the cache."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    step = models.BigIntegerField()

    def __str__(self) -> str:
        return f"TOTP step {self.step} of user {self.user_id}"

"""Print a demo user's current authenticator code, for `make run` (development only)."""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from allauth.mfa.utils import decrypt
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from core.management.commands.load_demo_data import DEMO_TOTP_SECRET, DEMO_USERS


class Command(BaseCommand):
    help = "Print the current authenticator code of a demo user (only with DEBUG=1)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("username", help="a demo user: " + ", ".join(u[0] for u in DEMO_USERS))

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("demo_totp works only with DEBUG=1.")
        username = str(options["username"])
        if username not in {demo[0] for demo in DEMO_USERS}:
            raise CommandError(f"{username!r} is not a demo user.")
        user = User.objects.filter(username=username).first()
        totp = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
        if user is None or totp is None:
            raise CommandError("Load the demo data first: python manage.py load_demo_data")
        # Only the demo's own secret: a demo user who enrolled a real app keeps it private.
        if decrypt(totp.data["secret"]) != DEMO_TOTP_SECRET:
            raise CommandError(f"{username} uses their own authenticator app, not the demo key.")
        period = int(mfa_settings.TOTP_PERIOD)
        now = int(time.time())
        left = period - now % period
        self.stdout.write(str(format_hotp_value(hotp_value(DEMO_TOTP_SECRET, now // period))))
        self.stderr.write(f"Valid for {left} more seconds, once (a used code is refused).")

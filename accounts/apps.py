from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib.sessions.backends.db import SessionStore

        # Connects the login stamp and the end of a disabled person's sessions.
        from django.db.models.signals import post_save, pre_save

        from accounts import audit, mfa, sessions  # noqa: F401
        from accounts.models import User
        from core import periodic

        mfa.connect_signals()
        pre_save.connect(audit.remember_activity, sender=User, dispatch_uid="accounts.audit.pre")
        post_save.connect(audit.audit_disabling, sender=User, dispatch_uid="accounts.audit.post")

        # Expired sessions can no longer be used, but their rows still hold what the
        # session held; the worker deletes them.
        periodic.register("accounts.clear-sessions", 3600, SessionStore.clear_expired)

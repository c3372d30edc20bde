from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib.sessions.backends.db import SessionStore

        # Connects the login stamp and the end of a disabled person's sessions.
        from accounts import sessions  # noqa: F401
        from core import periodic

        # Expired sessions can no longer be used, but their rows still hold what the
        # session held; the worker deletes them.
        periodic.register("accounts.clear-sessions", 3600, SessionStore.clear_expired)

from django.apps import AppConfig
from django.conf import settings


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        from core import periodic
        from messaging import outbox, spool
        from messaging.handlers import register_carrier_keywords

        register_carrier_keywords()
        periodic.register("messaging.outbox-sweep", settings.RR_OUTBOX_SWEEP_SECONDS, outbox.sweep)
        periodic.register("messaging.early-statuses", 60, outbox.settle_early_statuses)
        # Messages the web process spooled on this host while the database was down.
        periodic.register("messaging.replay-spool", 5, spool.replay)

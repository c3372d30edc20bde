from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        from core import periodic
        from messaging import outbox, spool
        from messaging.handlers import register_carrier_keywords

        register_carrier_keywords()
        periodic.register("messaging.outbox-sweep", 15, outbox.sweep)
        periodic.register("messaging.early-statuses", 60, outbox.settle_early_statuses)
        # Messages the web process spooled on this host while the database was down.
        periodic.register("messaging.replay-spool", 5, spool.replay)

from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        from core import periodic
        from messaging import outbox
        from messaging.handlers import register_carrier_keywords

        register_carrier_keywords()
        periodic.register("messaging.outbox-sweep", 15, outbox.sweep)
        periodic.register("messaging.early-statuses", 60, outbox.settle_early_statuses)

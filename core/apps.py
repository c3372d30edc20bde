from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        # Fail at start-up, not at the first report, when the keys are missing or weak.
        from core import crypto

        crypto.field_keys()
        crypto.hash_key()
        crypto.altcha_key()
        crypto.previous_hash_keys()

        from django.db.models.signals import post_save

        from core import audit_sink
        from core.models import AuditEvent

        post_save.connect(audit_sink.on_audit_event_saved, sender=AuditEvent)
        audit_sink.configured()  # a mistyped RR_AUDIT_SINK fails here, not on an action

        from core import periodic, retention

        # The purge runs in a thread of its own (core.retention), every hour by default.
        periodic.register(
            "core.retention-purge", retention.interval_seconds(), retention.start_scheduled_purge
        )

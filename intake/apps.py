from django.apps import AppConfig


class IntakeConfig(AppConfig):
    name = "intake"
    verbose_name = "Intake"

    def ready(self) -> None:
        from core import periodic
        from intake.actions import (
            handle_report_message,
            offline_reply,
            queue_unprocessed_messages,
        )
        from intake.proof_of_work import prune_spent
        from messaging.router import set_offline_reply, set_report_handler

        set_report_handler(handle_report_message)
        set_offline_reply(offline_reply)
        periodic.register("intake.retry-unprocessed", 15, queue_unprocessed_messages)
        periodic.register("intake.prune-spent-challenges", 600, prune_spent)

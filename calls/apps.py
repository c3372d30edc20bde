from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = "Voice hotline"

    def ready(self) -> None:
        from calls import flow, keywords, routing, selectors, transcription
        from core import periodic
        from incidents import extensions
        from intake import throttle

        # After dispatch's registration of ON / OFF, which this one extends.
        keywords.register_dispatcher_keywords()
        # A safety net: the webhooks and callbacks ring dispatchers as things change.
        periodic.register("calls.ring-waiting", 5, routing.ring_waiting_calls)
        periodic.register("calls.close-stale", 30, flow.close_stale_calls)
        periodic.register("calls.retry-transcriptions", 120, transcription.retry_transcriptions)
        throttle.register_trusted_sender_check(selectors.is_dispatcher_phone)
        extensions.add_report_panel(
            extensions.ReportPanel("calls", "calls/report_panel.html", selectors.report_context)
        )
        extensions.add_console_section(
            extensions.Section("calls", "calls/console_section.html", selectors.console_context)
        )

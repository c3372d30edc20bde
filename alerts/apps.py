from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self) -> None:
        from alerts import actions, keywords, selectors, subscriptions
        from core import periodic
        from incidents import actions as incident_actions
        from incidents import extensions
        from messaging.signals import opted_out

        keywords.register_subscriber_keywords()
        opted_out.connect(subscriptions.stop_on_opt_out, dispatch_uid="alerts-stop-on-opt-out")
        periodic.register("alerts.finish-sent", 10, actions.finish_sent_alerts)
        periodic.register("alerts.retry-lost-fan-outs", 60, actions.retry_lost_fan_outs)
        incident_actions.add_status_listener(actions.on_incident_status)
        incident_actions.add_merge_listener(actions.on_incident_merge)
        extensions.add_panel(
            extensions.Panel("alerts", "alerts/panel.html", selectors.panel_context)
        )

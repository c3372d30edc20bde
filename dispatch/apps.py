from django.apps import AppConfig


class DispatchConfig(AppConfig):
    name = "dispatch"
    verbose_name = "Dispatch"

    def ready(self) -> None:
        from core import periodic
        from dispatch import actions, keywords, selectors
        from incidents import actions as incident_actions
        from incidents import extensions

        keywords.register_responder_keywords()
        extensions.add_panel(
            extensions.Panel("dispatch", "dispatch/panel.html", selectors.panel_context)
        )
        extensions.add_row_annotation("offers_waiting", selectors.offered_count)
        extensions.add_row_annotation("offers_accepted", selectors.accepted_count)
        extensions.add_row_annotation("last_offer_at", selectors.last_offer_at)
        extensions.add_row_template("dispatch/row_response.html")
        incident_actions.add_verification_gate(actions.verification_gate)
        incident_actions.add_status_listener(actions.on_status_change)
        periodic.register("dispatch.close-idle-incidents", 300, actions.close_idle_incidents)

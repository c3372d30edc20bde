from django.apps import AppConfig


class DispatchConfig(AppConfig):
    name = "dispatch"
    verbose_name = "Dispatch"

    def ready(self) -> None:
        from core import periodic
        from core.middleware import allow_large_bodies
        from dispatch import actions, keywords, links, selectors
        from incidents import actions as incident_actions
        from incidents import extensions
        from intake import throttle

        allow_large_bodies(links.upload_limit)
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
        incident_actions.add_merge_listener(actions.on_merge)
        throttle.register_trusted_sender_check(selectors.is_active_responder_phone)
        periodic.register("dispatch.close-idle-incidents", 300, actions.close_idle_incidents)
        periodic.register("dispatch.announce-escalations", 30, actions.announce_escalations)
        periodic.register("dispatch.forget-old-locations", 600, actions.forget_old_locations)

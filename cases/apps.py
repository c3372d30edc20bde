from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "cases"
    verbose_name = "Family-support cases"

    def ready(self) -> None:
        from cases import hearing_setup, panels

        panels.register()
        hearing_setup.register()

"""The exports app: corporate park records and the export tasks built from them."""
from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "exports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import sys

        if len(sys.argv) > 1 and sys.argv[1] == "runserver":
            from .lifecycle import install_for_runserver

            install_for_runserver()

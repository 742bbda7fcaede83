from django.apps import AppConfig


class OmnihubConfig(AppConfig):
    """The project itself, installed only for its management commands (serve, ensure_admin)."""

    name = "omnihub"

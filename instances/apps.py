from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _seed_default_instance(sender: AppConfig, **kwargs: Any) -> None:
    from django.conf import settings

    from instances.services import seed_default_instance

    seed_default_instance(settings.DEFAULT_INSTANCE)


class InstancesConfig(AppConfig):
    name = "instances"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # After `migrate`, so a fresh database gets the .env tenant without another step.
        post_migrate.connect(_seed_default_instance, sender=self)

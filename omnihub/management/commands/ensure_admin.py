from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create the admin user from OMNIHUB_ADMIN_USER/OMNIHUB_ADMIN_PASSWORD, if set, or give "
        "the existing one that password when it differs."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        username, password = settings.OMNIHUB_ADMIN_USER, settings.OMNIHUB_ADMIN_PASSWORD
        users = get_user_model().objects
        if username and password:
            user = users.filter(username=username).first()
            if user is None:
                users.create_superuser(username=username, password=password, email="")
                self.stdout.write(f"created admin user {username!r}")
            elif not user.check_password(password):
                # The environment says what the password is: a changed one must not be ignored.
                user.set_password(password)
                user.save(update_fields=["password"])
                self.stdout.write(
                    f"set the password of admin user {username!r} from OMNIHUB_ADMIN_PASSWORD"
                )
        elif not users.filter(is_superuser=True).exists():
            self.stdout.write(
                "No admin user yet: run `.venv/bin/omnihub createsuperuser`, or set "
                "OMNIHUB_ADMIN_USER and OMNIHUB_ADMIN_PASSWORD in .env."
            )

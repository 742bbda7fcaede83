"""Test settings: hermetic (no .env), with keys of their own."""

import os
import tempfile

os.environ["OMNIHUB_ENV_FILE"] = os.devnull
os.environ.setdefault("SECRET_KEY", "test-secret-key")

from omnihub.settings import *  # noqa: F403

OMNIHUB_API_KEY = "test-api-key-0123456789"
OMNIHUB_ENCRYPTION_KEYS = ["dGVzdC1rZXktMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY="]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not memory: pipeline tests run worker threads (and processes) beside the test.
    # One per test run, so parallel runs on one machine do not share it.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.environ.get(
            "OMNIHUB_TEST_DB", os.path.join(tempfile.gettempdir(), f"omnihub-test-{os.getpid()}.db")
        )
    }

# Typing shows at once, so tests see it without waiting (tests of the wait set it themselves).
TYPING_AFTER_SECONDS = 0.0

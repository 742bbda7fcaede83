"""Test settings: hermetic (no .env), with keys of their own."""

import os

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

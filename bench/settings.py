"""Omnihub's own settings, plus the bare baseline view on the same server stack."""

from omnihub.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

"""Encryption at rest for tenant API keys, and the masked form shown to people."""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MASK = "••••"


class DecryptionError(Exception):
    """A stored secret could not be decrypted with any of OMNIHUB_ENCRYPTION_KEYS."""


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(
            "OMNIHUB_ENCRYPTION_KEYS is empty: generate one with `make .env` or "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())'`"
        )
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as error:
        raise ImproperlyConfigured(
            f"OMNIHUB_ENCRYPTION_KEYS holds an invalid key: {error}"
        ) from None


def current_fernet() -> MultiFernet:
    """The first key encrypts; every key decrypts, so keys can be rotated."""
    return _fernet(tuple(settings.OMNIHUB_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return current_fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return current_fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "a stored secret does not decrypt with any key in OMNIHUB_ENCRYPTION_KEYS"
        ) from None


def mask_secret(value: str) -> str:
    """Show that a secret is set and which one, never the secret itself."""
    if not value:
        return ""
    if len(value) < 12:
        return MASK
    return MASK + value[-4:]

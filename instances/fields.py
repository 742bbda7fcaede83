from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.expressions import Combinable

from instances.secrets import decrypt, encrypt


class EncryptedTextField(models.TextField[str | Combinable, str]):
    """A text column that holds Fernet ciphertext; Python code only ever sees the plaintext.

    The empty string is stored as is, so "not set" stays visible and queryable.
    """

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt(value)

    def from_db_value(
        self, value: str | None, expression: Any, connection: BaseDatabaseWrapper
    ) -> str | None:
        if value in (None, ""):
            return value
        return decrypt(value)

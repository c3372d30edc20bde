"""Model fields for personal data.

``EncryptedTextField`` keeps plaintext only on the model instance. The database column
holds a token from ``core.crypto`` whose associated data names the table, the column
and the row's ``uuid``. Decryption happens on first attribute access, with the row at
hand, which is why these values cannot be filtered, ordered or bulk-updated: look them
up through a keyed-hash column instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.query_utils import DeferredAttribute

from core import crypto


@dataclass(frozen=True, slots=True)
class Sealed:
    """A token as stored, not yet decrypted."""

    token: str


class EncryptedAttribute(DeferredAttribute):
    """A data descriptor (it defines __set__), so every read passes through __get__ and
    a sealed value is decrypted before anyone sees it."""

    field: EncryptedTextField

    def __set__(self, instance: models.Model, value: Any) -> None:
        instance.__dict__[self.field.attname] = value

    def __get__(self, instance: models.Model | None, cls: Any = None) -> Any:
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if isinstance(value, Sealed):
            value = crypto.decrypt(value.token, context=self.field.context_for(instance))
            instance.__dict__[self.field.attname] = value
        return value


class EncryptedTextField(models.TextField):  # type: ignore[type-arg]
    descriptor_class = EncryptedAttribute

    def __init__(self, *args: Any, row_key: str = "uuid", **kwargs: Any) -> None:
        self.row_key = row_key
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if self.row_key != "uuid":
            kwargs["row_key"] = self.row_key
        return name, path, args, kwargs

    def context_for(self, instance: models.Model) -> str:
        row = getattr(instance, self.row_key)
        if row is None or row == "":
            raise ValueError(f"{type(instance).__name__}.{self.row_key} must be set to encrypt.")
        return f"{self.model._meta.db_table}.{self.column}.{row}"

    def from_db_value(self, value: Any, expression: Any, connection: BaseDatabaseWrapper) -> Any:
        return None if value is None else Sealed(value)

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = model_instance.__dict__.get(self.attname)
        if value is None or isinstance(value, Sealed):
            return value
        if not isinstance(value, str):
            raise TypeError(f"{self.attname} holds text, not {type(value).__name__}.")
        return Sealed(crypto.encrypt(value, context=self.context_for(model_instance)))

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, Sealed):
            return value.token
        raise TypeError(
            "Encrypted fields cannot be filtered or updated in bulk; "
            "use the keyed-hash column or save the instance."
        )

    def to_python(self, value: Any) -> Any:
        return value

    def value_to_string(self, obj: models.Model) -> str:
        # Serialisers (dumpdata) get the token, never the plaintext.
        sealed = self.pre_save(obj, add=False)
        return "" if sealed is None else str(sealed.token)

"""Encryption of case data under the case's own key (``cases.keystore``).

Tokens look like ``rrc1.<key ref>.<base64url(nonce || ciphertext)>``: AES-256-GCM
with associated data naming the key, the table, the column and the row's ``uuid``,
so a value copied into another row, column or case fails to decrypt (R17). The key
reference in the token lets a value be read without loading its case.

``CaseEncryptedTextField`` works like ``core.fields.EncryptedTextField`` (plaintext
only on the instance, decrypted on first access, no filtering or bulk updates) but
with the case's key instead of the field key. It is deliberately not a subclass of
it: ``rotate_keys`` re-encrypts field-key values, while case values stay under their
case key and only the key's wrapping is rotated (``keystore.rewrap``).
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.query_utils import DeferredAttribute

from cases import keystore
from core.crypto import DecryptionError

TOKEN_VERSION = "rrc1"  # noqa: S105 - a format tag, not a secret
NONCE_BYTES = 12


def _associated_data(key_ref: str, context: str) -> bytes:
    return f"{TOKEN_VERSION}|{key_ref}|{context}".encode()


def encrypt(plaintext: str, *, key_ref: str, context: str) -> str:
    key = keystore.load_key(key_ref)
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(
        nonce, plaintext.encode("utf-8"), _associated_data(key_ref, context)
    )
    body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
    return f"{TOKEN_VERSION}.{key_ref}.{body}"


def token_key_ref(token: str) -> str:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_VERSION:
        raise DecryptionError("Not a case-encrypted value.")
    return parts[1]


def decrypt(token: str, *, context: str) -> str:
    """Raises ``keystore.CaseKeyMissing`` once the case's key is destroyed."""
    key_ref = token_key_ref(token)
    _, _, body = token.split(".")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as exc:
        raise DecryptionError("Malformed encrypted value.") from exc
    if len(raw) <= NONCE_BYTES:
        raise DecryptionError("Malformed encrypted value.")
    key = keystore.load_key(key_ref)
    try:
        plaintext = AESGCM(key).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], _associated_data(key_ref, context)
        )
    except InvalidTag as exc:
        raise DecryptionError("The value does not belong to this row or was altered.") from exc
    return plaintext.decode("utf-8")


@dataclass(frozen=True, slots=True)
class CaseSealed:
    """A token as stored, not yet decrypted."""

    token: str


class Shredded(str):
    """What a value reads as once its case's key is destroyed: empty, and marked, so
    loading a purged case (``refresh_from_db``, a list of cases) works while nothing
    of it can be read. Saving it fails: there is no key to encrypt with."""

    __slots__ = ()


class CaseEncryptedAttribute(DeferredAttribute):
    field: CaseEncryptedTextField

    def __set__(self, instance: models.Model, value: Any) -> None:
        instance.__dict__[self.field.attname] = value

    def __get__(self, instance: models.Model | None, cls: Any = None) -> Any:
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if isinstance(value, CaseSealed):
            try:
                value = decrypt(value.token, context=self.field.context_for(instance))
            except keystore.CaseKeyMissing:
                # Only a destroyed key reads as empty; a value that does not belong to
                # its row (R17) or a wrong field key still raises.
                value = Shredded()
            instance.__dict__[self.field.attname] = value
        return value


class CaseEncryptedTextField(models.TextField):  # type: ignore[type-arg]
    """Text encrypted with the key of the case ``case_path`` leads to ("" for the
    case itself). The row needs a ``uuid``."""

    descriptor_class = CaseEncryptedAttribute

    def __init__(self, *args: Any, case_path: str = "case", **kwargs: Any) -> None:
        self.case_path = case_path
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if self.case_path != "case":
            kwargs["case_path"] = self.case_path
        return name, path, args, kwargs

    def context_for(self, instance: models.Model) -> str:
        row = getattr(instance, "uuid", None)
        if not row:
            raise ValueError(f"{type(instance).__name__}.uuid must be set to encrypt.")
        return f"{self.model._meta.db_table}.{self.column}.{row}"

    def key_ref_for(self, instance: models.Model) -> str:
        case = instance
        for part in filter(None, self.case_path.split(".")):
            case = getattr(case, part)
        key_ref = getattr(case, "key_ref", "")
        if not key_ref:
            raise ValueError("The case has no key.")
        return str(key_ref)

    def from_db_value(self, value: Any, expression: Any, connection: BaseDatabaseWrapper) -> Any:
        return None if value is None else CaseSealed(value)

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = model_instance.__dict__.get(self.attname)
        if value is None or isinstance(value, CaseSealed):
            return value
        if isinstance(value, Shredded):
            raise keystore.CaseKeyMissing("This case's key was destroyed.")
        if not isinstance(value, str):
            raise TypeError(f"{self.attname} holds text, not {type(value).__name__}.")
        return CaseSealed(
            encrypt(
                value,
                key_ref=self.key_ref_for(model_instance),
                context=self.context_for(model_instance),
            )
        )

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, CaseSealed):
            return value.token
        raise TypeError(
            "Case-encrypted fields cannot be filtered or updated in bulk; save the instance."
        )

    def to_python(self, value: Any) -> Any:
        return value

    def value_to_string(self, obj: models.Model) -> str:
        # Serialisers (dumpdata) get the token, never the plaintext.
        sealed = self.pre_save(obj, add=False)
        return "" if sealed is None else str(sealed.token)

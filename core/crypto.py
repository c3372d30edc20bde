"""Field encryption and keyed hashes for personal data.

- Values are encrypted with AES-256-GCM. The associated data binds each ciphertext to
  its table, column and row, so a value copied into another row or column fails to
  decrypt instead of showing someone else's data.
- Tokens name the key that made them (``rr1.<key id>.<base64url(nonce || ciphertext)>``)
  so keys can be rotated: the first key in RR_FIELD_KEYS encrypts, every listed key
  decrypts.
- Lookups go through HMAC-SHA256 under RR_HASH_KEY, a separate key, never SECRET_KEY.
  While the hash key rotates, the keys it replaces are listed in RR_HASH_KEYS_PREVIOUS:
  ``keyed_hashes`` gives a value's hash under each, so lookups can find rows not yet
  recomputed (``core.hash_rotation``, ``manage.py rotate_hash_key``).

Encryption protects a stolen disk or backup, not a live compromise of the server.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from functools import cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

TOKEN_VERSION = "rr1"  # noqa: S105 - a format tag, not a secret
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
NONCE_BYTES = 12


class DecryptionError(Exception):
    """A token could not be decrypted: wrong key, wrong row, or tampered data."""


@dataclass(frozen=True)
class FieldKey:
    key_id: str
    secret: bytes


def _decode_key(raw: str, *, name: str) -> bytes:
    try:
        secret = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImproperlyConfigured(f"{name} is not valid base64.") from exc
    if len(secret) != 32:
        raise ImproperlyConfigured(f"{name} must decode to 32 bytes, not {len(secret)}.")
    return secret


def parse_field_keys(value: str) -> tuple[FieldKey, ...]:
    """Parse ``id:base64key,id:base64key``; the first key is the one that encrypts."""
    keys: list[FieldKey] = []
    for item in value.split(","):
        if not item.strip():
            continue
        key_id, sep, raw = item.strip().partition(":")
        if not sep or not KEY_ID_PATTERN.match(key_id):
            raise ImproperlyConfigured(
                "RR_FIELD_KEYS entries look like 'k1:<base64 of 32 bytes>', separated by commas."
            )
        keys.append(FieldKey(key_id, _decode_key(raw, name=f"RR_FIELD_KEYS[{key_id}]")))
    if not keys:
        raise ImproperlyConfigured("RR_FIELD_KEYS must list at least one key.")
    if len({k.key_id for k in keys}) != len(keys):
        raise ImproperlyConfigured("RR_FIELD_KEYS lists the same key id twice.")
    return tuple(keys)


@cache
def field_keys() -> tuple[FieldKey, ...]:
    keys = parse_field_keys(settings.RR_FIELD_KEYS)
    hashing = {hash_key(), *previous_hash_keys()}
    if any(_reuses_secret_key(k.secret) or k.secret in hashing for k in keys):
        raise ImproperlyConfigured("Field keys must differ from SECRET_KEY and the hash keys.")
    return keys


@cache
def hash_key() -> bytes:
    """The current hash key: every new hash is made with it."""
    key = _decode_key(settings.RR_HASH_KEY, name="RR_HASH_KEY")
    if _reuses_secret_key(key):
        raise ImproperlyConfigured("RR_HASH_KEY must differ from SECRET_KEY.")
    return key


@cache
def altcha_key() -> bytes:
    """The key that signs the web form's proof-of-work challenges (intake/proof_of_work.py)."""
    key = _decode_key(settings.RR_ALTCHA_HMAC_KEY, name="RR_ALTCHA_HMAC_KEY")
    if _reuses_secret_key(key) or key == hash_key() or any(k.secret == key for k in field_keys()):
        raise ImproperlyConfigured(
            "RR_ALTCHA_HMAC_KEY must differ from SECRET_KEY, RR_HASH_KEY and the field keys."
        )
    return key


@cache
def previous_hash_keys() -> tuple[bytes, ...]:
    """Hash keys being rotated away from (RR_HASH_KEYS_PREVIOUS, newest first)."""
    raw = getattr(settings, "RR_HASH_KEYS_PREVIOUS", "") or ""
    keys = tuple(
        _decode_key(item, name=f"RR_HASH_KEYS_PREVIOUS[{n}]")
        for n, item in enumerate(i for i in raw.split(",") if i.strip())
    )
    current = hash_key()
    if any(k == current for k in keys) or len(set(keys)) != len(keys):
        raise ImproperlyConfigured(
            "RR_HASH_KEYS_PREVIOUS repeats a key, or lists the current RR_HASH_KEY."
        )
    if any(_reuses_secret_key(k) for k in keys):
        raise ImproperlyConfigured("RR_HASH_KEYS_PREVIOUS must not contain SECRET_KEY.")
    return keys


def _reuses_secret_key(secret: bytes) -> bool:
    """True when a key is SECRET_KEY itself, as text or as the bytes it encodes."""
    secret_key = settings.SECRET_KEY
    try:
        decoded = base64.b64decode(secret_key, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    return hmac.compare_digest(secret, secret_key.encode()) or hmac.compare_digest(secret, decoded)


def reset_key_cache() -> None:
    """Forget loaded keys (tests that change the key settings)."""
    field_keys.cache_clear()
    hash_key.cache_clear()
    altcha_key.cache_clear()
    previous_hash_keys.cache_clear()


def _associated_data(key_id: str, context: str) -> bytes:
    return f"{TOKEN_VERSION}|{key_id}|{context}".encode()


def encrypt(plaintext: str, *, context: str) -> str:
    key = field_keys()[0]
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key.secret).encrypt(
        nonce, plaintext.encode("utf-8"), _associated_data(key.key_id, context)
    )
    body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
    return f"{TOKEN_VERSION}.{key.key_id}.{body}"


def encrypt_bytes(data: bytes, *, context: str) -> bytes:
    """Binary form for files: ``rr1.<key id>.`` then nonce and ciphertext."""
    key = field_keys()[0]
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key.secret).encrypt(nonce, data, _associated_data(key.key_id, context))
    return f"{TOKEN_VERSION}.{key.key_id}.".encode() + nonce + sealed


def decrypt_bytes(blob: bytes, *, context: str) -> bytes:
    version, _, rest = blob.partition(b".")
    key_id_raw, _, raw = rest.partition(b".")
    key_id = key_id_raw.decode("ascii", errors="replace")
    key = next((k for k in field_keys() if k.key_id == key_id), None)
    if version.decode("ascii", errors="replace") != TOKEN_VERSION or key is None:
        raise DecryptionError("Not an encrypted file, or its key is not configured.")
    if len(raw) <= NONCE_BYTES:
        raise DecryptionError("Malformed encrypted file.")
    try:
        return AESGCM(key.secret).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], _associated_data(key_id, context)
        )
    except InvalidTag as exc:
        raise DecryptionError("The file does not belong to this record or was altered.") from exc


def token_key_id(token: str) -> str:
    version, _, rest = token.partition(".")
    key_id, _, _ = rest.partition(".")
    if version != TOKEN_VERSION or not key_id:
        raise DecryptionError("Not an encrypted value.")
    return key_id


def decrypt(token: str, *, context: str) -> str:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_VERSION:
        raise DecryptionError("Not an encrypted value.")
    _, key_id, body = parts
    key = next((k for k in field_keys() if k.key_id == key_id), None)
    if key is None:
        raise DecryptionError(f"No key with id {key_id!r} is configured.")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as exc:
        raise DecryptionError("Malformed encrypted value.") from exc
    if len(raw) <= NONCE_BYTES:
        raise DecryptionError("Malformed encrypted value.")
    try:
        plaintext = AESGCM(key.secret).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], _associated_data(key_id, context)
        )
    except InvalidTag as exc:
        raise DecryptionError("The value does not belong to this row or was altered.") from exc
    return plaintext.decode("utf-8")


def _hmac(key: bytes, value: str, purpose: str) -> str:
    message = purpose.encode() + b"\x00" + value.encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def keyed_hash(value: str, *, purpose: str) -> str:
    """A stable lookup key for ``value``; ``purpose`` separates unrelated uses."""
    return _hmac(hash_key(), value, purpose)


def keyed_hashes(value: str, *, purpose: str) -> list[str]:
    """``value``'s hash under the current key first, then under each previous key."""
    return [_hmac(key, value, purpose) for key in (hash_key(), *previous_hash_keys())]


def previous_keyed_hashes(value: str, *, purpose: str) -> list[str]:
    """``value``'s hashes under the previous keys only (empty outside a rotation)."""
    return [_hmac(key, value, purpose) for key in previous_hash_keys()]


def generate_key() -> str:
    return base64.b64encode(os.urandom(32)).decode("ascii")

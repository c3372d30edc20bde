"""Field encryption: round trips, row binding, tampering, rotation, key separation."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from hypothesis import given
from hypothesis import strategies as st

from core import crypto

ROOT = Path(__file__).resolve().parents[2]


@given(st.text(max_size=500))
def test_encrypt_then_decrypt_returns_the_text(text: str) -> None:
    token = crypto.encrypt(text, context="t.c.1")
    assert crypto.decrypt(token, context="t.c.1") == text


def test_ciphertext_never_contains_the_plaintext() -> None:
    token = crypto.encrypt("+15105550123", context="t.c.1")
    assert "5105550123" not in token
    assert token.startswith("rr1.t1.")


def test_the_same_text_encrypts_differently_each_time() -> None:
    assert crypto.encrypt("same", context="x") != crypto.encrypt("same", context="x")


def test_a_token_from_another_row_or_column_does_not_decrypt() -> None:
    token = crypto.encrypt("secret", context="intake_report.reporter_contact.A")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token, context="intake_report.reporter_contact.B")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token, context="intake_report.other_column.A")


@pytest.mark.parametrize("position", [0, 11, 12, 20, -1])
def test_a_tampered_token_does_not_decrypt(position: int) -> None:
    """Flip one byte of the nonce, the ciphertext or the tag."""
    token = crypto.encrypt("secret", context="x")
    prefix, _, body = token.rpartition(".")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[position] ^= 0x01
    tampered = f"{prefix}.{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(tampered, context="x")


@pytest.mark.parametrize(
    "junk", ["", "plaintext", "rr1.t1", "rr1.t1.!!!", "rr1.zz.AAAA", "rr2.t1.AAAA"]
)
def test_malformed_tokens_are_refused(junk: str) -> None:
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(junk, context="x")


def test_an_older_key_still_decrypts_after_a_new_one_is_added(
    settings: pytest.FixtureRequest,
) -> None:
    old_keys = settings.RR_FIELD_KEYS  # type: ignore[attr-defined]
    token = crypto.encrypt("kept", context="x")
    new_key = crypto.generate_key()
    settings.RR_FIELD_KEYS = f"t2:{new_key},{old_keys}"  # type: ignore[attr-defined]
    crypto.reset_key_cache()
    try:
        assert crypto.decrypt(token, context="x") == "kept"
        assert crypto.encrypt("new", context="x").startswith("rr1.t2.")
    finally:
        settings.RR_FIELD_KEYS = old_keys  # type: ignore[attr-defined]
        crypto.reset_key_cache()


def test_encrypted_files_are_bound_to_their_record() -> None:
    blob = crypto.encrypt_bytes(b"\x89PNG data", context="photo.A")
    assert b"PNG data" not in blob
    assert crypto.decrypt_bytes(blob, context="photo.A") == b"\x89PNG data"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_bytes(blob, context="photo.B")


def test_keyed_hash_is_stable_and_separated_by_purpose() -> None:
    a = crypto.keyed_hash("+15105550123", purpose="phone")
    assert a == crypto.keyed_hash("+15105550123", purpose="phone")
    assert a != crypto.keyed_hash("+15105550123", purpose="client")
    assert "5105550123" not in a and len(a) == 64


@pytest.mark.parametrize(
    "value",
    ["", "k1", "k1:notbase64!", "k1:" + "QUJD", "bad id!:" + crypto.generate_key()],
    # Fixed ids: a random key in an id makes xdist workers collect different tests.
    ids=["empty", "no-key", "not-base64", "short", "bad-id"],
)
def test_invalid_field_key_settings_are_refused(value: str) -> None:
    with pytest.raises(ImproperlyConfigured):
        crypto.parse_field_keys(value)


def test_duplicate_key_ids_are_refused() -> None:
    key = crypto.generate_key()
    with pytest.raises(ImproperlyConfigured):
        crypto.parse_field_keys(f"k1:{key},k1:{crypto.generate_key()}")


def _start(env_changes: dict[str, str | None]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RR_", "SECRET_KEY"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "rapidresponse.settings",
            "SECRET_KEY": "s" * 50,
            "RR_FIELD_KEYS": "k1:" + crypto.generate_key(),
            "RR_HASH_KEY": crypto.generate_key(),
            "RR_ALTCHA_HMAC_KEY": crypto.generate_key(),
            "RR_VAR_DIR": str(Path(tempfile.gettempdir()) / "rr-start-test"),
            "RR_SMS_PROVIDER": "console",
        }
    )
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_app_starts_with_separate_keys() -> None:
    assert _start({}).returncode == 0


@pytest.mark.parametrize(
    "missing", ["RR_FIELD_KEYS", "RR_HASH_KEY", "RR_ALTCHA_HMAC_KEY", "SECRET_KEY"]
)
def test_the_app_refuses_to_start_without_a_key(missing: str) -> None:
    result = _start({missing: None})
    assert result.returncode != 0
    assert missing in result.stderr


def test_the_app_refuses_a_hash_key_equal_to_secret_key() -> None:
    key = crypto.generate_key()
    result = _start({"SECRET_KEY": key, "RR_HASH_KEY": key})
    assert result.returncode != 0
    assert "RR_HASH_KEY must differ from SECRET_KEY" in result.stderr


@pytest.mark.parametrize("reused", ["SECRET_KEY", "RR_HASH_KEY"])
def test_the_app_refuses_an_altcha_key_equal_to_another_key(reused: str) -> None:
    key = crypto.generate_key()
    result = _start({reused: key, "RR_ALTCHA_HMAC_KEY": key})
    assert result.returncode != 0
    assert "RR_ALTCHA_HMAC_KEY must differ" in result.stderr


def test_twilio_needs_the_public_url_its_signatures_cover() -> None:
    result = _start(
        {
            "RR_SMS_PROVIDER": "twilio",
            "TWILIO_ACCOUNT_SID": "ACx",
            "TWILIO_AUTH_TOKEN": "token",
            "RR_PUBLIC_URL": None,
        }
    )
    assert result.returncode != 0
    assert "RR_PUBLIC_URL" in result.stderr


def test_a_deployment_must_choose_its_provider() -> None:
    result = _start({"RR_SMS_PROVIDER": None, "DEBUG": None})
    assert result.returncode != 0
    assert "RR_SMS_PROVIDER" in result.stderr

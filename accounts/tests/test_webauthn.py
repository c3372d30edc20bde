"""Passkeys (WebAuthn) on the server side, with a software authenticator: a P-256 key
made here plays the part of the browser and the key (navigator.credentials), and
everything else is the real thing: allauth's pages, fido2's checks of the challenge,
origin, relying party and signature, our MFA step. Not exercised: a browser's own
WebAuthn API and allauth's JavaScript that calls it (headless Chromium offers no
authenticator here)."""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import timedelta
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client
from django.utils import timezone
from fido2.cose import ES256
from fido2.utils import websafe_decode, websafe_encode
from fido2.webauthn import (
    Aaguid,
    AttestationObject,
    AttestedCredentialData,
    AuthenticatorData,
    CollectedClientData,
)

from accounts import mfa
from accounts.models import Role
from accounts.testing import code_at, current_step, enrol_totp
from accounts.tests.conftest import Clock
from conftest import committed, make_user
from core.models import AuditAction, AuditEvent

ORIGIN = "http://testserver"
RP_ID = "testserver"
PASSWORD = "a-long-test-password"
FLAGS = AuthenticatorData.FLAG.UP | AuthenticatorData.FLAG.UV


class SoftKey:
    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.counter = 0

    def register(self, options: dict[str, Any]) -> dict[str, Any]:
        challenge = websafe_decode(options["publicKey"]["challenge"])
        client_data = CollectedClientData.create(
            type="webauthn.create", challenge=challenge, origin=ORIGIN
        )
        credential = AttestedCredentialData.create(
            Aaguid.NONE,
            self.credential_id,
            ES256.from_cryptography_key(self.private.public_key()),  # type: ignore[no-untyped-call]
        )
        data = AuthenticatorData.create(
            hashlib.sha256(RP_ID.encode()).digest(),
            FLAGS | AuthenticatorData.FLAG.AT,
            self.counter,
            credential,
        )
        attestation = AttestationObject.create("none", data, {})
        return {
            "type": "public-key",
            "id": websafe_encode(self.credential_id),
            "rawId": websafe_encode(self.credential_id),
            "response": {
                "clientDataJSON": websafe_encode(client_data),
                "attestationObject": websafe_encode(bytes(attestation)),
            },
            "clientExtensionResults": {},
        }

    def sign(self, options: dict[str, Any], origin: str = ORIGIN) -> dict[str, Any]:
        self.counter += 1
        challenge = websafe_decode(options["publicKey"]["challenge"])
        client_data = CollectedClientData.create(
            type="webauthn.get", challenge=challenge, origin=origin
        )
        data = AuthenticatorData.create(
            hashlib.sha256(RP_ID.encode()).digest(), FLAGS, self.counter
        )
        signature = self.private.sign(bytes(data) + client_data.hash, ec.ECDSA(hashes.SHA256()))
        return {
            "type": "public-key",
            "id": websafe_encode(self.credential_id),
            "rawId": websafe_encode(self.credential_id),
            "response": {
                "clientDataJSON": websafe_encode(client_data),
                "authenticatorData": websafe_encode(bytes(data)),
                "signature": websafe_encode(signature),
                "userHandle": None,
            },
            "clientExtensionResults": {},
        }


def completed(client: Client) -> bool:
    return mfa.MFA_AT in client.session


def js_data(body: bytes) -> dict[str, Any]:
    found = re.search(rb'<script id="js_data" type="application/json">(.*?)</script>', body, re.S)
    assert found, "the page carries no WebAuthn options"
    return dict(json.loads(found.group(1)))


@pytest.fixture
def passkey_user(db: None, totp_clock: Clock, settings: Any) -> tuple[Client, SoftKey]:
    """Dana, logged in with password and TOTP, who then adds a passkey."""
    settings.MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = False  # fido2's origin check, as in production
    dana = make_user(Role.DISPATCHER, "dana")
    secret = enrol_totp(dana)
    client = Client()
    client.post("/accounts/login/", {"username": "dana", "password": PASSWORD})
    client.post("/accounts/login/mfa/", {"code": code_at(secret, current_step(totp_clock.now))})
    assert completed(client)
    key = SoftKey()
    page = client.get("/accounts/mfa/webauthn/add/")
    assert page.status_code == 200
    options = js_data(page.content)["creation_options"]
    assert options["publicKey"]["rp"]["id"] == RP_ID
    with committed():
        added = client.post(
            "/accounts/mfa/webauthn/add/",
            {"name": "Dana's key", "credential": json.dumps(key.register(options))},
        )
    assert added.status_code == 302
    return client, key


@pytest.fixture(autouse=True)
def _https_origin_is_not_needed_for_testserver(monkeypatch: pytest.MonkeyPatch) -> None:
    # fido2 accepts only https origins (and localhost); the test client is
    # http://testserver. Its check is replaced by the same comparison over http.
    from allauth.mfa.webauthn.internal import auth

    original = auth.get_server

    def server() -> Any:
        fido = original()
        fido._verify = lambda origin: origin == ORIGIN
        return fido

    monkeypatch.setattr(auth, "get_server", server)


def test_adding_a_passkey_stores_it_for_the_signed_in_person(passkey_user: Any) -> None:
    client, _key = passkey_user
    passkey = Authenticator.objects.get(type=Authenticator.Type.WEBAUTHN)
    assert passkey.user.username == "dana"
    assert AuditEvent.objects.filter(
        action=AuditAction.MFA_ENROLLED, detail={"kind": "webauthn"}
    ).exists()
    listing = client.get("/accounts/mfa/webauthn/")
    assert b"Dana&#x27;s key" in listing.content or b"Dana's key" in listing.content


def test_a_passkey_completes_the_mfa_step_once(passkey_user: Any) -> None:
    _client, key = passkey_user
    browser = Client()
    browser.post("/accounts/login/", {"username": "dana", "password": PASSWORD})
    step = browser.get("/accounts/login/mfa/")
    assert b'id="mfa_webauthn_authenticate"' in step.content
    assert b"/static/mfa/js/webauthn.js" in step.content
    options = js_data(step.content)["request_options"]
    assertion = key.sign(options)
    done = browser.post("/accounts/login/mfa/", {"credential": json.dumps(assertion)})
    assert done.status_code == 302
    assert completed(browser)
    assert browser.get("/console/").status_code == 200

    # The same assertion again, on a new password-only session: its challenge is spent.
    again = Client()
    again.post("/accounts/login/", {"username": "dana", "password": PASSWORD})
    again.get("/accounts/login/mfa/")
    refused = again.post("/accounts/login/mfa/", {"credential": json.dumps(assertion)})
    assert refused.status_code == 200
    assert not completed(again)


def test_a_passkey_signed_for_another_origin_is_refused(passkey_user: Any) -> None:
    _client, key = passkey_user
    browser = Client()
    browser.post("/accounts/login/", {"username": "dana", "password": PASSWORD})
    options = js_data(browser.get("/accounts/login/mfa/").content)["request_options"]
    phished = key.sign(options, origin="https://rapid-response.example.net")
    refused = browser.post("/accounts/login/mfa/", {"credential": json.dumps(phished)})
    assert refused.status_code == 200
    assert not completed(browser)


def test_another_persons_passkey_does_not_log_in(passkey_user: Any) -> None:
    _client, key = passkey_user
    enrol_totp(make_user(Role.DISPATCHER, "alex"))
    browser = Client()
    browser.post("/accounts/login/", {"username": "alex", "password": PASSWORD})
    step = browser.get("/accounts/login/mfa/")
    assert b"mfa_webauthn_authenticate" not in step.content  # Alex has no passkey
    forged = key.sign({"publicKey": {"challenge": websafe_encode(os.urandom(32))}})
    refused = browser.post("/accounts/login/mfa/", {"credential": json.dumps(forged)})
    assert refused.status_code == 200
    assert not completed(browser)


def test_a_passkey_still_signs_in_once_codes_are_refused_for_the_account(
    passkey_user: Any, settings: Any
) -> None:
    """Wrong codes stop codes for the account, never its passkey: whoever has the
    password cannot lock its owner out that way."""
    _client, key = passkey_user
    settings.RR_MFA_CODE_FAILURES_PER_ACCOUNT = 1
    attacker = Client()
    attacker.post("/accounts/login/", {"username": "dana", "password": PASSWORD})
    assert attacker.post("/accounts/login/mfa/", {"code": "000000"}).status_code == 200
    assert attacker.post("/accounts/login/mfa/", {"code": "000000"}).status_code == 429

    owner = Client()
    owner.post("/accounts/login/", {"username": "dana", "password": PASSWORD})
    options = js_data(owner.get("/accounts/login/mfa/").content)["request_options"]
    done = owner.post("/accounts/login/mfa/", {"credential": json.dumps(key.sign(options))})
    assert done.status_code == 302
    assert completed(owner)


def test_reauthentication_takes_the_password_with_a_passkey(
    passkey_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The re-authentication page offers the passkey in the password's form: the two
    together confirm it is the owner; the passkey without the password does not."""
    client, key = passkey_user
    later = timezone.now() + timedelta(seconds=600)
    monkeypatch.setattr("accounts.reauth.timezone.now", lambda: later)
    assert client.get("/accounts/password/")["Location"].startswith("/accounts/reauthenticate/")
    page = client.get("/accounts/reauthenticate/")
    assert page.status_code == 200
    assert b'id="mfa_webauthn_authenticate"' in page.content
    options = js_data(page.content)["request_options"]
    no_password = client.post(
        "/accounts/reauthenticate/",
        {"password": "", "code": "", "credential": json.dumps(key.sign(options))},
    )
    assert no_password.status_code == 200
    assert not AuditEvent.objects.filter(action=AuditAction.REAUTHENTICATED).exists()

    options = js_data(client.get("/accounts/reauthenticate/").content)["request_options"]
    done = client.post(
        "/accounts/reauthenticate/",
        {"password": PASSWORD, "code": "", "credential": json.dumps(key.sign(options))},
    )
    assert done.status_code == 302
    assert AuditEvent.objects.filter(action=AuditAction.REAUTHENTICATED).count() == 1
    assert client.get("/accounts/password/").status_code == 200

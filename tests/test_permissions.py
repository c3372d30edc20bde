"""Every URL pattern, for every role, against an explicit table (R13, ASVS 8.2.1, 8.3.1).

The table names what a GET gets: the page (200), a redirect to the login page, 403 for
a signed-in role that may not, 404 for an object that does not exist (path parameters
are random), 405 for a view that only takes POST. The checks run in that order — login,
then role, then method, then the object — so a wrong role never learns whether an
object exists. A URL added without an entry here fails ``test_every_url_has_an_entry``.
A refusal (login or 403) is also the answer to a POST, so no POST-only action skips its
check.
"""

from __future__ import annotations

import random
import string
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.models import Role, User
from conftest import make_user

ROLES = ("anonymous", "verifier", "family_support", "dispatcher", "coordinator")
LOGIN = "login"  # a 302 to the login page, with ?next=
REAUTH = "reauth"  # a 302 to the re-authentication page (accounts.reauth), with ?next=

Outcome = int | str  # a status code, LOGIN, or "redirect:<path>"
Expected = dict[str, Outcome]


def everyone(outcome: Outcome) -> Expected:
    """Public: the same answer whoever asks."""
    return dict.fromkeys(ROLES, outcome)


def staff(outcome: Outcome) -> Expected:
    """Any signed-in staff member."""
    return {"anonymous": LOGIN, **dict.fromkeys(ROLES[1:], outcome)}


def dispatchers(outcome: Outcome) -> Expected:
    """Dispatchers and coordinators (``accounts.rules.can_dispatch``)."""
    return {
        "anonymous": LOGIN,
        "verifier": 403,
        "family_support": 403,
        "dispatcher": outcome,
        "coordinator": outcome,
    }


def coordinators(outcome: Outcome) -> Expected:
    return {**dispatchers(outcome), "dispatcher": 403}


def case_workers(outcome: Outcome) -> Expected:
    """Family support and coordinators (``cases.rules.works_cases``)."""
    return {
        "anonymous": LOGIN,
        "verifier": 403,
        "family_support": outcome,
        "dispatcher": 403,
        "coordinator": outcome,
    }


EXPECTED: dict[str, Expected] = {
    # The site
    "home": {
        "anonymous": "redirect:/report/",
        "verifier": 200,
        "family_support": 200,
        "dispatcher": "redirect:/console/",
        "coordinator": "redirect:/console/",
    },
    "healthz": everyone(200),
    "accounts:login": {"anonymous": 200, **dict.fromkeys(ROLES[1:], "redirect:/")},
    "accounts:logout": everyone(405),
    # MFA (accounts/mfa.py): these sessions completed MFA (force_login, see conftest)
    "accounts:mfa": staff("redirect:/"),
    "accounts:reauth": staff(200),
    # One's own new password, after password and MFA again.
    "accounts:password": staff(REAUTH),
    # Coordinators' staff page; a reset asks the coordinator for password and MFA first.
    "accounts:staff": coordinators(200),
    "accounts:reset-factors": coordinators(REAUTH),
    "mfa_index": staff(200),
    # Adding or changing a factor asks for password and MFA again; these people have
    # no factor yet (404) and no recovery codes (404). Every page acts on request.user.
    "mfa_activate_totp": staff(REAUTH),
    "mfa_deactivate_totp": staff(404),
    "mfa_view_recovery_codes": staff(404),
    "mfa_generate_recovery_codes": staff(REAUTH),
    "mfa_download_recovery_codes": staff(404),
    "mfa_list_webauthn": staff(200),
    "mfa_add_webauthn": staff(REAUTH),
    "mfa_remove_webauthn": staff(REAUTH),
    "mfa_edit_webauthn": staff(REAUTH),
    # The console (incidents)
    "incidents:console": dispatchers(200),
    "incidents:events": dispatchers(200),
    "incidents:area": dispatchers(200),
    "incidents:incident": dispatchers(404),
    "incidents:incident-status": dispatchers(405),
    "incidents:incident-level": dispatchers(405),
    "incidents:incident-merge": dispatchers(405),
    "incidents:report": dispatchers(404),
    "incidents:report-place": dispatchers(405),
    "incidents:report-move": dispatchers(405),
    "incidents:report-split": dispatchers(405),
    "incidents:report-triage": dispatchers(405),
    "incidents:report-contact": dispatchers(405),
    "incidents:report-photo": dispatchers(404),
    # Dispatch
    "dispatch:responders": dispatchers(200),
    "dispatch:responder-new": coordinators(200),
    "dispatch:responder-import": coordinators(200),
    "dispatch:responder": dispatchers(404),
    "dispatch:responder-training": coordinators(405),
    "dispatch:responder-shift": coordinators(405),
    "dispatch:import": coordinators(404),
    "dispatch:offers": dispatchers(405),
    "dispatch:needed": dispatchers(405),
    "dispatch:evidence": dispatchers(404),
    # Alerts
    "alerts:list": dispatchers(200),
    "alerts:control": coordinators(405),
    "alerts:templates": coordinators(200),
    "alerts:compose": dispatchers(404),
    "alerts:audience": dispatchers(404),
    "alerts:detail": dispatchers(404),
    "alerts:change": dispatchers(405),
    # Calls
    "calls:console-section": dispatchers(200),
    "calls:my-shift": dispatchers(405),
    "calls:call": dispatchers(404),
    "calls:call-number": dispatchers(405),
    "calls:call-recording": dispatchers(404),
    "calls:call-callback": dispatchers(405),
    "calls:call-report": dispatchers(405),
    "calls:roster": coordinators(200),
    "calls:roster-line": coordinators(404),
    "calls:roster-shift": coordinators(405),
    "calls:roster-shift-remove": coordinators(405),
    "calls:prompts": coordinators(200),
    # Public on purpose: the telephone provider fetches recorded prompts.
    "calls:prompt-audio": everyone(404),
    "calls:prompt-save": coordinators(405),
    # Family-support cases (a case someone may not read is a 404, like a missing one)
    "cases:list": case_workers(200),
    "cases:new": case_workers(200),
    "cases:open": case_workers(404),
    "cases:facilities": case_workers(200),
    "cases:facility-new": coordinators(200),
    "cases:facility-edit": coordinators(404),
    "cases:partners": case_workers(200),
    "cases:partner-new": coordinators(200),
    "cases:partner-edit": coordinators(404),
    "cases:detail": case_workers(404),
    "cases:edit-person": case_workers(404),
    "cases:edit-handling": case_workers(404),
    "cases:transfer": case_workers(405),
    "cases:contact-new": case_workers(404),
    "cases:contact-edit": case_workers(404),
    "cases:contact-remove": case_workers(405),
    "cases:refer": case_workers(405),
    "cases:referral-status": case_workers(405),
    "cases:fund-new": case_workers(404),
    "cases:fund-edit": case_workers(404),
    "cases:note": case_workers(405),
    "cases:task": case_workers(405),
    "cases:task-done": case_workers(405),
    "cases:export": case_workers(404),
    # Hearings (the calendar shows only cases the person may read)
    "cases:hearing-calendar": case_workers(200),
    "cases:hearing-new": case_workers(404),
    "cases:hearing-edit": case_workers(404),
    "cases:hearing-cancel": case_workers(405),
    "cases:hearing-invite": case_workers(405),
    "cases:accompaniment-cancel": case_workers(405),
    "cases:volunteer": everyone(404),  # a signed link; a random token is no link
    # Retention (core)
    "retention:rules": coordinators(200),
    # The audit log (core)
    "audit:log": coordinators(200),
    # Public pages
    "join:join": everyone(200),
    "join:confirm": everyone(405),
    "field:me": everyone(404),  # signed links; a random token is no link
    "field:offer": everyone(404),
    "intake:report": everyone(200),
    "intake:thanks": everyone(200),
    "intake:area": everyone(200),
    "intake:challenge": everyone(200),
    # Webhooks: POST only, authenticated by the provider's signature
    "messaging:twilio-sms": everyone(405),
    "messaging:twilio-status": everyone(405),
    "messaging:twilio-voice": everyone(405),
    "messaging:twilio-voice-step": everyone(405),
    # The test phone (console provider only; see test_the_test_phone_is_gone_with_twilio)
    "test-phone:phone": staff(200),
    "test-phone:conversation": staff(200),
    "test-phone:new-number": staff(405),
    "test-phone:call-start": staff(405),
    "test-phone:call-answer": staff(405),
    "test-phone:call-record": staff(405),
    "test-phone:call-hang-up": staff(405),
    "test-phone:call-poll": staff(405),
    "test-phone:phones": staff(200),
    "test-phone:phone-answer": staff(405),
    "test-phone:phone-press": staff(405),
    "test-phone:phone-ring-out": staff(405),
    "test-phone:phone-hang-up": staff(405),
}


def url_patterns() -> dict[str, URLPattern]:
    """Every named pattern of the site, by its namespaced name."""
    found: dict[str, URLPattern] = {}

    def walk(patterns: list[Any], namespace: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = pattern.namespace or ""
                walk(pattern.url_patterns, f"{namespace}{inner}:" if inner else namespace)
            else:
                assert pattern.name, f"a URL pattern without a name: {pattern.pattern}"
                found[f"{namespace}{pattern.name}"] = pattern

    walk(get_resolver().url_patterns, "")
    return found


def random_value(converter: Any) -> Any:
    name = type(converter).__name__
    if name == "UUIDConverter":
        return uuid.uuid4()
    if name == "IntConverter":
        return random.randint(1, 10**9)
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=24))


def url_for(name: str, pattern: URLPattern) -> str:
    converters = getattr(pattern.pattern, "converters", {})
    kwargs = {key: random_value(converter) for key, converter in converters.items()}
    return reverse(name, kwargs=kwargs)


def outcome_of(response: Any) -> Outcome:
    if response.status_code == 302:
        location = response["Location"]
        if location.startswith(reverse("accounts:login") + "?next="):
            return LOGIN
        if location.startswith(reverse("accounts:reauth") + "?next="):
            return REAUTH
        return f"redirect:{location}"
    return int(response.status_code)


def test_every_url_has_an_entry() -> None:
    names = set(url_patterns())
    missing = sorted(names - set(EXPECTED))
    assert not missing, f"add these URL names to EXPECTED: {missing}"
    # Entries for names that are not mounted are not an error: a URL being added in
    # another branch gets its entry before it lands.
    for name, expected in EXPECTED.items():
        assert set(expected) == set(ROLES), name


@pytest.fixture
def clients(db: None) -> dict[str, Client]:
    result = {"anonymous": Client()}
    for role in Role:
        user: User = make_user(role)
        client = Client()
        client.force_login(user)
        result[role.value] = client
    assert set(result) == set(ROLES)
    return result


@pytest.fixture
def no_stream_connection_close(monkeypatch: pytest.MonkeyPatch) -> None:
    # The event stream closes its request's database connection before streaming;
    # here that connection holds the test's transaction.
    monkeypatch.setattr("incidents.views.connection", SimpleNamespace(close=lambda: None))


@pytest.mark.usefixtures("service_area", "no_stream_connection_close")
@pytest.mark.parametrize("role", ROLES)
def test_get_every_url_as(role: str, clients: dict[str, Client]) -> None:
    client = clients[role]
    wrong = []
    for name, pattern in url_patterns().items():
        path = url_for(name, pattern)
        # Not response.close(): it sends request_finished, which would close the
        # connection that holds this test's transaction. The stream is never iterated.
        got = outcome_of(client.get(path))
        expected = EXPECTED.get(name, {}).get(role, "an entry in EXPECTED")
        if got != expected:
            wrong.append(f"{name} {path}: expected {expected}, got {got}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.usefixtures("service_area")
@pytest.mark.parametrize("role", ROLES)
def test_a_refusal_is_the_same_for_a_post(role: str, clients: dict[str, Client]) -> None:
    client = clients[role]
    wrong = []
    for name, pattern in url_patterns().items():
        expected = EXPECTED.get(name, {}).get(role)
        if expected not in {LOGIN, 403}:
            continue
        path = url_for(name, pattern)
        got = outcome_of(client.post(path, {"anything": "1"}))
        if got != expected:
            wrong.append(f"POST {name} {path}: expected {expected}, got {got}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("role", ROLES)
def test_the_test_phone_is_gone_with_twilio(
    role: str, clients: dict[str, Client], settings: Any
) -> None:
    settings.RR_SMS_PROVIDER = "twilio"
    for name, pattern in url_patterns().items():
        if name.startswith("test-phone:"):
            path = url_for(name, pattern)
            assert clients[role].get(path).status_code == 404, path
            assert clients[role].post(path).status_code == 404, path

"""The public form's proof-of-work (R7) and rate limit (R6): a solved challenge files one
report, once; expired, spliced, altered and forged payloads are refused and store
nothing; the 21st post in a minute is refused without the client's address being
stored anywhere."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import altcha
import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.tests.test_login import stored_cache_entries
from conftest import committed
from intake import proof_of_work
from intake.actions import WebReport, submit_web_report
from intake.models import Report, SpentChallenge
from intake.tests.pow import solve, solved_payload

CLIENT_IP = "203.0.113.58"


def form(payload: str, **overrides: str) -> dict[str, str]:
    data = {
        "text": "Agents in vests stopping people at the bus stop",
        "location_text": "Fruitvale Ave & E 12th St",
        "submission": str(uuid.uuid4()),
        "altcha": payload,
    }
    data.update(overrides)
    return data


def post(client: Client, data: dict[str, str], ip: str = CLIENT_IP) -> Any:
    with committed():
        return client.post("/report/", data, REMOTE_ADDR=ip)


def decode(payload: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(base64.b64decode(payload))
    return data


def encode(data: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(data).encode()).decode()


def assert_refused_and_nothing_stored(response: Any) -> None:
    assert response.status_code == 400
    assert b"The check did not go through" in response.content
    assert b'href="#pow-error"' in response.content  # in the summary that takes focus
    assert not Report.objects.exists()
    assert not SpentChallenge.objects.exists()


@pytest.mark.django_db
class TestChallenge:
    def test_the_challenge_is_signed_expires_and_is_never_cached(self, client: Client) -> None:
        response = client.get("/report/challenge/")
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"]
        challenge = response.json()
        params = challenge["parameters"]
        assert params["algorithm"] == "PBKDF2/SHA-256"
        assert len(challenge["signature"]) == 64
        assert time.time() < params["expiresAt"] <= time.time() + 20 * 60 + 5
        assert params["keySignature"]  # the server checks a solution without re-deriving
        # Two challenges never share a nonce or salt.
        other = client.get("/report/challenge/").json()["parameters"]
        assert (other["nonce"], other["salt"]) != (params["nonce"], params["salt"])

    def test_a_fetched_challenge_solves_into_a_report(self, client: Client) -> None:
        challenge = client.get("/report/challenge/").json()
        assert post(client, form(solve(challenge))).status_code == 302
        assert Report.objects.count() == 1
        assert SpentChallenge.objects.count() == 1


@pytest.mark.django_db
class TestReplay:
    def test_the_same_payload_twice_is_accepted_then_refused(self, client: Client) -> None:
        payload = solved_payload()
        assert post(client, form(payload)).status_code == 302
        second = post(client, form(payload, text="Another report with the same proof"))
        assert second.status_code == 400
        assert b"The check did not go through" in second.content
        assert b"Another report with the same proof" in second.content  # what was typed
        assert Report.objects.count() == 1
        assert SpentChallenge.objects.count() == 1

    def test_a_double_submission_of_one_form_is_still_one_report(self, client: Client) -> None:
        data = form(solved_payload())
        assert post(client, data).status_code == 302
        assert post(client, data).status_code == 302
        assert Report.objects.count() == 1

    def test_a_replay_that_wins_the_race_to_the_check_is_refused_in_the_transaction(
        self,
    ) -> None:
        solved = proof_of_work.verify(solved_payload())

        def report(key: uuid.UUID) -> WebReport:
            return WebReport(
                text="agents",
                language="en",
                submission_key=key,
                observed_at=timezone.now(),
                location_text="Fruitvale",
                challenge=solved,
            )

        with committed():
            submit_web_report(report(uuid.uuid4()))
        with pytest.raises(proof_of_work.ChallengeAlreadyUsed), committed():
            submit_web_report(report(uuid.uuid4()))
        assert Report.objects.count() == 1

    def test_spent_challenges_are_forgotten_once_expired(self) -> None:
        now = timezone.now()
        long_ago = now - proof_of_work.PRUNE_GRACE - timedelta(seconds=1)
        SpentChallenge.objects.create(digest="a" * 64, expires_at=long_ago)
        SpentChallenge.objects.create(digest="b" * 64, expires_at=now + timedelta(minutes=5))
        assert proof_of_work.prune_spent(now=now) == 1
        assert list(SpentChallenge.objects.values_list("digest", flat=True)) == ["b" * 64]

    def test_a_just_expired_spent_challenge_is_kept_for_servers_whose_clock_is_behind(
        self,
    ) -> None:
        # A web server whose clock runs a little behind the one pruning still takes
        # the challenge as unexpired; its row must still be there to refuse a replay.
        now = timezone.now()
        SpentChallenge.objects.create(digest="c" * 64, expires_at=now - timedelta(seconds=30))
        assert proof_of_work.prune_spent(now=now) == 0
        assert SpentChallenge.objects.filter(digest="c" * 64).exists()


def other_key_challenge(**overrides: Any) -> dict[str, Any]:
    """A challenge in our format signed with a key that is not ours."""
    challenge = altcha.create_challenge(
        "PBKDF2/SHA-256",
        10,
        counter=5,
        expires_at=int(time.time()) + 600,
        hmac_secret=b"not-our-key-" * 3,
        **overrides,
    )
    data: dict[str, Any] = challenge.to_dict()
    return data


@pytest.mark.django_db
class TestRefused:
    def test_an_expired_payload_is_refused(self, client: Client, settings: Any) -> None:
        settings.RR_ALTCHA_EXPIRY_SECONDS = -5
        response = post(client, form(solved_payload()))
        assert_refused_and_nothing_stored(response)

    def test_a_payload_with_a_wrong_hmac_is_refused(self, client: Client) -> None:
        assert_refused_and_nothing_stored(post(client, form(solve(other_key_challenge()))))

    def test_a_signature_spliced_onto_another_challenges_parameters_is_refused(
        self, client: Client
    ) -> None:
        first = decode(solved_payload())
        second = decode(solved_payload())
        spliced = {
            "challenge": {
                "parameters": second["challenge"]["parameters"],
                "signature": first["challenge"]["signature"],
            },
            "solution": second["solution"],
        }
        assert_refused_and_nothing_stored(post(client, form(encode(spliced))))

    @pytest.mark.parametrize(
        "alter",
        [
            # CVE-2025-68113: moving characters between the salt and what follows it,
            # or lengthening the expiry, kept a v1 signature valid. Every v2 parameter
            # is signed, so each of these breaks the signature.
            lambda p: p.update(salt=p["salt"] + p["nonce"][:2], nonce=p["nonce"][2:]),
            lambda p: p.update(salt=p["salt"][:-2] + "00"),
            lambda p: p.update(salt=p["salt"].upper()),
            lambda p: p.update(expiresAt=p["expiresAt"] + 86400),
            lambda p: p.update(cost=1),
            lambda p: p.update(keyPrefix=p["keyPrefix"][:2]),
            lambda p: p.pop("keySignature"),
            lambda p: p.update(data={"expires": "never"}),
        ],
        ids=[
            "salt-nonce-splice",
            "altered-salt",
            "salt-case",
            "longer-expiry",
            "lower-cost",
            "shorter-prefix",
            "dropped-key-signature",
            "added-data",
        ],
    )
    def test_altered_parameters_are_refused(self, client: Client, alter: Any) -> None:
        payload = decode(solved_payload())
        alter(payload["challenge"]["parameters"])
        assert_refused_and_nothing_stored(post(client, form(encode(payload))))

    def test_a_wrong_solution_to_a_genuine_challenge_is_refused(self, client: Client) -> None:
        genuine = decode(solved_payload())
        other = decode(solved_payload())
        genuine["solution"] = other["solution"]
        assert_refused_and_nothing_stored(post(client, form(encode(genuine))))

    @pytest.mark.parametrize(
        "payload",
        [
            "",
            "not base64 at all!",
            base64.b64encode(b"[1, 2, 3]").decode(),
            # What the widget sends in its own test mode.
            base64.b64encode(b'{"challenge": null, "solution": null, "test": true}').decode(),
            "A" * 5000,
        ],
        ids=["missing", "garbage", "not-an-object", "widget-test-mode", "oversized"],
    )
    def test_malformed_payloads_are_refused(self, client: Client, payload: str) -> None:
        assert_refused_and_nothing_stored(post(client, form(payload)))

    def test_an_unsigned_challenge_is_refused(self, client: Client) -> None:
        unsigned = altcha.create_challenge(
            "PBKDF2/SHA-256", 10, counter=3, expires_at=int(time.time()) + 600
        )
        assert_refused_and_nothing_stored(post(client, form(solve(unsigned.to_dict()))))

    def test_a_challenge_without_expiry_is_refused_even_if_signed(self, client: Client) -> None:
        # Signed with our key but without an expiry: a challenge we never issue.
        challenge = altcha.create_challenge(
            "PBKDF2/SHA-256",
            10,
            counter=3,
            hmac_secret=proof_of_work._subkey(b"challenge"),
        )
        assert_refused_and_nothing_stored(post(client, form(solve(challenge.to_dict()))))

    def test_a_post_without_javascript_explains_what_to_do(self, client: Client) -> None:
        page = client.get("/report/")
        assert b"<noscript>" in page.content
        assert b"text or call the hotline instead" in page.content
        response = post(client, form(""))
        assert response.status_code == 400


@pytest.mark.django_db(transaction=True)
def test_the_21st_post_in_a_minute_is_429_and_the_address_is_stored_nowhere() -> None:
    client = Client()
    statuses = [post(client, form(solved_payload())).status_code for _ in range(21)]
    assert statuses == [302] * 20 + [429]
    assert Report.objects.count() == 20
    # Another client is not affected.
    assert post(Client(), form(solved_payload()), ip="198.51.100.23").status_code == 302
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from introspection
            for row in cursor.fetchall():
                assert CLIENT_IP not in repr(row), table
    stored = stored_cache_entries()
    assert "ratelimit:" in stored  # the counter is there, under a keyed hash
    assert CLIENT_IP not in stored

"""Rotating RR_HASH_KEY: lookups keep working during the rotation, rotate_hash_key
recomputes every hash that has a stored number, and the old key can then go."""

from __future__ import annotations

import hashlib
import hmac
import io
import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import Role
from alerts import subscriptions
from alerts.models import AreaKind, Subscriber
from alerts.tests.factories import subscriber
from calls.models import Call, CallState, DispatcherLine
from conftest import FRUITVALE, make_user, post_twilio, sms_params
from core import crypto, hash_rotation, phones
from core.geo import Point
from dispatch.models import Responder
from intake.models import Channel, Report
from messaging.models import (
    Contact,
    InboundMessage,
    OptOut,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
)
from messaging.outbox import contact_for, queue_sms
from messaging.selectors import is_opted_out

pytestmark = pytest.mark.django_db

H1 = crypto.generate_key()
H2 = crypto.generate_key()
SUBSCRIBER = "+15105550111"
RESPONDER = "+15105550122"
DISPATCHER = "+15105550133"
CALLER = "+15105550144"
STOPPED_CONTACT = "+15105550155"  # opted out; the outbox still holds the number
STOPPED_GONE = "+15105550166"  # opted out; no row holds the number any more
_sids = itertools.count()


def under(key: bytes | str, number: str) -> str:
    """``number``'s phone hash under a given key, computed independently."""
    raw = crypto._decode_key(str(key), name="test")
    return hmac.new(raw, b"phone\x00" + number.encode(), hashlib.sha256).hexdigest()


def use(settings: Any, current: str, previous: str = "") -> None:
    settings.RR_HASH_KEY = current
    settings.RR_HASH_KEYS_PREVIOUS = previous
    crypto.reset_key_cache()


@pytest.fixture
def keys(settings: Any) -> Iterator[Any]:
    original = settings.RR_HASH_KEY
    use(settings, H1)
    yield settings
    use(settings, original)


def text(client: Client, sender: str, body: str) -> None:
    params = sms_params(f"SM{next(_sids):032d}", body, sender=sender)
    assert post_twilio(client, "/hooks/twilio/sms", params).status_code == 200


@pytest.fixture
def rows(keys: Any, client: Client) -> dict[str, Any]:
    """One row in every hash column, all made under H1 by the code that makes them."""
    person = subscriber(at=FRUITVALE, phone=SUBSCRIBER)
    responder = Responder.objects.create(
        name="Rosa", phone=RESPONDER, phone_hash=phones.phone_hash(RESPONDER)
    )
    line = DispatcherLine.objects.create(
        user=make_user(Role.DISPATCHER), phone=DISPATCHER, phone_hash=phones.phone_hash(DISPATCHER)
    )
    call = Call.objects.create(
        provider="twilio",
        provider_sid="CA" + uuid.uuid4().hex,
        caller=CALLER,
        caller_hash=phones.phone_hash(CALLER),
        state=CallState.ENDED,
    )
    report = Report.objects.create(
        channel=Channel.VOICE,
        language="en",
        text="a report",
        reporter_contact=CALLER,
        reporter_hash=phones.phone_hash(CALLER),
    )
    text(client, CALLER, "ICE at the corner of 5th")  # an inbound message and a reply
    queue_sms(to=STOPPED_CONTACT, body="hello", language="en", kind=OutboxKind.NOTICE)
    OptOut.objects.create(phone_hash=phones.phone_hash(STOPPED_CONTACT))
    OptOut.objects.create(phone_hash=phones.phone_hash(STOPPED_GONE))
    return {
        "subscriber": person,
        "responder": responder,
        "line": line,
        "call": call,
        "report": report,
    }


def stored_hashes() -> set[str]:
    """Every value of every hash column."""
    found: set[str] = set()
    for spec in hash_rotation.COLUMNS:
        found |= set(spec.model._base_manager.values_list(spec.column, flat=True))
    return found - {""}


def rotate(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_hash_key", *args, "--batch-size", "2", stdout=out, stderr=io.StringIO())
    return out.getvalue()


ALL_HELD = [SUBSCRIBER, RESPONDER, DISPATCHER, CALLER, STOPPED_CONTACT]


def test_every_hash_column_is_covered(rows: dict[str, Any]) -> None:
    # A new hash column must be added to core.hash_rotation.COLUMNS.
    columns = {
        (model._meta.label, f.name)
        for model in apps.get_models()
        for f in model._meta.local_concrete_fields
        if f.name.endswith("_hash") and f.name != "code_hash"
    }
    assert columns == {(c.label, c.column) for c in hash_rotation.COLUMNS}


def test_rotation_recomputes_every_hash_and_the_old_key_can_go(
    rows: dict[str, Any], keys: Any
) -> None:
    h1_hashes = {under(H1, n) for n in [*ALL_HELD, STOPPED_GONE]}
    assert h1_hashes <= stored_hashes() | {under(H1, STOPPED_GONE)}

    use(keys, H2, H1)
    dry = rotate("--dry-run")
    # The subscriber, the opted-out number written to, the caller our reply went to.
    assert "messaging.Contact.phone_hash: 3 to change" in dry
    assert "messaging.OptOut.phone_hash: 1 to change from the numbers held; 1 not" in dry
    assert {under(H1, n) for n in ALL_HELD} <= stored_hashes()  # the dry run changed nothing

    out = rotate()
    assert "dispatch.Responder.phone_hash: 1 recomputed" in out
    assert "calls.DispatcherLine.phone_hash: 1 recomputed" in out
    assert "calls.Call.caller_hash: 1 recomputed" in out
    assert "intake.Report.reporter_hash: 2 recomputed" in out  # the voice and the SMS report
    assert "alerts.Subscriber.phone_hash: 1 recomputed" in out
    assert "1 not accounted for by any held number" in out
    assert "0 hashes recomputed in all" in rotate()  # a rerun finds nothing left

    # No column holds an H1 hash of a number it stores; only the opt-out whose number is
    # held nowhere could not be recomputed.
    assert stored_hashes() & h1_hashes == {under(H1, STOPPED_GONE)}

    use(keys, H2)  # H1 removed
    current = {n: under(H2, n) for n in ALL_HELD}
    assert Subscriber.objects.get(phone_hash=current[SUBSCRIBER]) == rows["subscriber"]
    assert Contact.objects.filter(phone_hash=current[SUBSCRIBER]).exists()
    assert Responder.objects.get(phone_hash=current[RESPONDER]) == rows["responder"]
    assert DispatcherLine.objects.get(phone_hash=current[DISPATCHER]) == rows["line"]
    assert Call.objects.get(caller_hash=current[CALLER]) == rows["call"]
    assert Report.objects.filter(reporter_hash=current[CALLER]).count() == 2
    assert InboundMessage.objects.filter(sender_hash=current[CALLER]).exists()
    assert OutboxMessage.objects.filter(recipient_hash=current[CALLER]).exists()
    assert OutboxMessage.objects.filter(recipient_hash=current[STOPPED_CONTACT]).exists()
    # The opt-out of a number still held was carried over: it still holds.
    assert is_opted_out(phones.phone_hash(STOPPED_CONTACT))
    message = queue_sms(to=STOPPED_CONTACT, body="again", language="en", kind=OutboxKind.NOTICE)
    assert message.status == OutboxStatus.SKIPPED


def test_lookups_find_rows_under_the_previous_key_before_the_command_runs(
    rows: dict[str, Any], keys: Any, client: Client
) -> None:
    use(keys, H2, H1)
    # The opt-out made under H1 still stops a text to that number.
    message = queue_sms(to=STOPPED_CONTACT, body="hi", language="en", kind=OutboxKind.NOTICE)
    assert message.status == OutboxStatus.SKIPPED
    # Writing to a subscriber reaches the H1 row, not a second one.
    assert contact_for(SUBSCRIBER).pk == rows["subscriber"].contact_id
    assert Contact.objects.count() == 3  # subscriber, stopped contact, the caller's replies
    # A text from the responder finds them (their row is moved to H2 as it arrives).
    text(client, RESPONDER, "HELP")
    assert Responder.objects.get(pk=rows["responder"].pk).phone_hash == under(H2, RESPONDER)
    # The opt-out nobody holds the number of is found when that number writes in.
    assert OptOut.objects.filter(phone_hash=under(H1, STOPPED_GONE)).exists()
    text(client, STOPPED_GONE, "START")
    assert not OptOut.objects.filter(
        phone_hash__in=[under(H1, STOPPED_GONE), under(H2, STOPPED_GONE)]
    ).exists()


def test_an_opt_out_held_nowhere_is_found_only_while_its_key_is_listed(
    rows: dict[str, Any], keys: Any
) -> None:
    use(keys, H2, H1)
    rotate()
    # With H1 still listed, the number is recognised when it is next written to.
    queue_sms(to=STOPPED_GONE, body="hi", language="en", kind=OutboxKind.NOTICE)
    assert OptOut.objects.filter(phone_hash=under(H2, STOPPED_GONE)).exists()
    assert not OptOut.objects.filter(phone_hash=under(H1, STOPPED_GONE)).exists()


def test_a_code_sent_before_the_rotation_still_confirms(keys: Any) -> None:
    person = subscriptions.request_on_the_web(
        phone="+15105550177",
        language="en",
        areas=[subscriptions.AreaSpec(AreaKind.RADIUS, point=Point(*FRUITVALE), radius_m=500)],
    )
    person.code_hash = crypto.keyed_hash(f"{person.uuid}:123456", purpose="subscription-code")
    person.code_expires_at = timezone.now() + subscriptions.CODE_LIFETIME
    person.save()
    use(keys, H2, H1)
    confirmed = subscriptions.confirm_code(phone="+15105550177", code="123456")
    assert confirmed.pk == person.pk and confirmed.code_hash == ""


def test_previous_keys_are_checked(keys: Any) -> None:
    use(keys, H2, f"{H1},{H2}")
    with pytest.raises(ImproperlyConfigured, match="current"):
        crypto.previous_hash_keys()
    use(keys, H2, "not base64!")
    with pytest.raises(ImproperlyConfigured):
        crypto.previous_hash_keys()
    use(keys, H2, H1)
    assert crypto.keyed_hashes("x", purpose="p") == [
        crypto.keyed_hash("x", purpose="p"),
        crypto._hmac(crypto._decode_key(H1, name="t"), "x", "p"),
    ]

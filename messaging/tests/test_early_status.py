"""Status callbacks that arrive before the provider SID is on the outbox row.

Twilio can call back before its answer to the send has been recorded (a fast
callback), and a sender that died after the provider accepted a message leaves the SID
unknown until the lease sweep finds it. Those callbacks are kept and applied, forward
only, once the SID is written; nothing is dropped, and any order still ends right.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from conftest import post_twilio
from core import periodic
from messaging import outbox
from messaging.models import EarlyStatus, OptOut, OutboxKind, OutboxMessage, OutboxStatus
from messaging.providers import Sent, active_provider

TO = "+15105550188"
_sids = itertools.count()


def new_sid() -> str:
    return f"SMearly{next(_sids):010d}"


def queue() -> OutboxMessage:
    return outbox.queue_sms(
        to=TO, body="Verify a report near 35th Ave.", language="en", kind=OutboxKind.OFFER
    )


def status_post(client: Client, sid: str, status: str, **extra: str) -> Any:
    return post_twilio(
        client,
        "/hooks/twilio/status",
        {"MessageSid": sid, "MessageStatus": status, "AccountSid": "ACtest", **extra},
    )


def send_answering(sid: str) -> Any:
    """The sender's provider call answers with this SID (the callbacks already used it)."""
    return mock.patch.object(outbox, "_send", lambda message, provider_name: Sent(sid))


@pytest.mark.django_db
def test_a_callback_before_the_send_is_recorded_is_applied_when_it_is(client: Client) -> None:
    message = queue()
    sid = new_sid()
    assert status_post(client, sid, "delivered").status_code == 204
    # Kept, with nothing about the person: the SID, the status, the code, the time.
    early = EarlyStatus.objects.get()
    assert (early.provider_sid, early.status) == (sid, OutboxStatus.DELIVERED)
    with send_answering(sid):
        assert outbox.send_due() == 1
    message.refresh_from_db()
    assert message.provider_sid == sid
    assert message.status == OutboxStatus.DELIVERED
    assert not EarlyStatus.objects.exists()


@pytest.mark.django_db
def test_an_early_21610_failure_opts_the_number_out_once_matched(client: Client) -> None:
    message = queue()
    sid = new_sid()
    status_post(client, sid, "failed", ErrorCode="21610")
    assert not OptOut.objects.exists()  # whose number it is is not known yet
    with send_answering(sid):
        outbox.send_due()
    message.refresh_from_db()
    assert (message.status, message.error_code) == (OutboxStatus.FAILED, "21610")
    assert OptOut.objects.filter(phone_hash=message.recipient_hash).exists()


@pytest.mark.django_db
def test_callbacks_for_a_crashed_send_are_applied_when_the_sweep_finds_it(
    client: Client, twilio_api: Any
) -> None:
    message = queue()
    [claimed] = outbox._claim(timezone.now(), 1, "dead-sender")
    active_provider().send(to=claimed.contact.phone, body=claimed.text)  # then it died
    [accepted] = twilio_api.messages
    status_post(client, accepted.sid, "sent")
    status_post(client, accepted.sid, "delivered")
    message.refresh_from_db()
    assert message.status == OutboxStatus.SENDING and message.provider_sid is None
    assert EarlyStatus.objects.count() == 2
    outbox.release_expired_leases(now=timezone.now() + outbox.LEASE + timedelta(seconds=1))
    message.refresh_from_db()
    assert message.provider_sid == accepted.sid
    assert message.status == OutboxStatus.DELIVERED
    assert not EarlyStatus.objects.exists()


PROVIDER = ["queued", "sending", "sent", "delivered", "undelivered", "failed"]
FINAL = {"delivered", "undelivered", "failed"}


class EarlyAndLateCallbacks(TestCase):
    @settings(max_examples=40, deadline=None)
    @given(
        callbacks=st.lists(st.sampled_from(PROVIDER), min_size=1, max_size=8),
        data=st.data(),
    )
    def test_any_order_and_any_split_ends_in_the_first_final_state(
        self, callbacks: list[str], data: st.DataObject
    ) -> None:
        """Some callbacks (repeats included) come before the send is recorded, the rest
        after: the row ends as if all had come after, in the same order."""
        early = data.draw(st.integers(min_value=0, max_value=len(callbacks)), label="early")
        message = queue()
        sid = new_sid()
        for status in callbacks[:early]:
            outbox.record_status(provider_sid=sid, status=status)
        with send_answering(sid):
            outbox.send_due()
        for status in callbacks[early:]:
            outbox.record_status(provider_sid=sid, status=status)
        message.refresh_from_db()
        finals = [s for s in callbacks if s in FINAL]
        assert message.status == (finals[0] if finals else OutboxStatus.SENT)
        assert not EarlyStatus.objects.filter(provider_sid=sid).exists()


@pytest.mark.django_db
def test_the_periodic_job_applies_late_matches_and_purges_after_a_day() -> None:
    assert "messaging.early-statuses" in {job.name for job in periodic.jobs()}
    # A callback stored at the very moment the send was recorded: each missed the other.
    message = queue()
    raced = new_sid()
    EarlyStatus.objects.create(provider_sid=raced, status=OutboxStatus.DELIVERED)
    OutboxMessage.objects.filter(pk=message.pk).update(status=OutboxStatus.SENT, provider_sid=raced)
    # Callbacks no row will ever have: kept for a day, then purged.
    stale = EarlyStatus.objects.create(
        provider_sid=new_sid(),
        status=OutboxStatus.SENT,
        received_at=timezone.now() - outbox.EARLY_STATUS_KEPT - timedelta(minutes=1),
    )
    recent = EarlyStatus.objects.create(provider_sid=new_sid(), status=OutboxStatus.SENT)
    assert outbox.settle_early_statuses() == 1
    message.refresh_from_db()
    assert message.status == OutboxStatus.DELIVERED
    assert list(EarlyStatus.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not EarlyStatus.objects.filter(pk=stale.pk).exists()


@pytest.mark.django_db
def test_early_statuses_hold_no_personal_data(client: Client) -> None:
    sid = new_sid()
    status_post(client, sid, "undelivered", ErrorCode="30003", To=TO, Body="secret words")
    columns = {f.column for f in EarlyStatus._meta.concrete_fields}
    assert columns == {"id", "provider_sid", "status", "error_code", "received_at"}
    with connection.cursor() as cursor:
        cursor.execute("SELECT provider_sid, status, error_code FROM messaging_earlystatus")
        assert cursor.fetchall() == [(sid, "undelivered", "30003")]

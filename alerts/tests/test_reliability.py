"""A sending worker killed with SIGKILL in mid-alert, then restarted: every recipient
gets the alert exactly once (or it expires), against the Twilio stand-in."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone

from accounts.models import Role
from alerts import actions
from alerts.models import AlertKind
from alerts.tests.conftest import incident_at
from alerts.tests.factories import subscriber
from conftest import FRUITVALE, TWILIO_TOKEN, make_user
from core.areas import load_service_area, parse_geojson
from incidents.models import IncidentStatus
from incidents.tests.test_live import _database_url
from messaging import outbox
from messaging.models import OutboxMessage, OutboxStatus

ROOT = Path(__file__).resolve().parents[2]
RECIPIENTS = 300
WORKER = """
import time, django
django.setup()
from messaging import outbox
while True:
    outbox.send_due(budget_seconds=10)
    time.sleep(0.01)
"""


def start_worker(api_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "rapidresponse.test_settings",
        "DATABASE_URL": _database_url(),
        "RR_SMS_PROVIDER": "twilio",
        "TWILIO_API_BASE": api_url,
        "TWILIO_ACCOUNT_SID": "ACtest",
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "RR_SMS_FROM": "+15105550000",
        "RR_SMS_RATE_PER_SECOND": "100",
    }
    return subprocess.Popen(  # noqa: S603 - our interpreter, loopback only
        [sys.executable, "-c", WORKER], cwd=ROOT, env=env, stderr=subprocess.PIPE
    )


def wait_for(condition: Any, within: float, worker: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if worker.poll() is not None:
            raise RuntimeError(worker.stderr.read().decode() if worker.stderr else "worker died")
        if time.monotonic() > deadline:
            raise TimeoutError("the worker did not get there in time")
        time.sleep(0.02)


def unsettled() -> int:
    return OutboxMessage.objects.filter(
        status__in=[OutboxStatus.QUEUED, OutboxStatus.SENDING]
    ).count()


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_send_resumes_without_resending(twilio_api: Any, settings: Any) -> None:
    # Tasks are only recorded here: the worker subprocess is the only sender.
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    load_service_area(
        "Test area", parse_geojson((ROOT / "demo" / "neighbourhoods.geojson").read_text())
    )
    dispatcher = make_user(Role.DISPATCHER)
    approver = make_user(Role.DISPATCHER, "approver")
    people = [
        subscriber(at=(FRUITVALE[0] + i * 0.00002, FRUITVALE[1]), radius_m=100)
        for i in range(RECIPIENTS)
    ]
    incident = incident_at(FRUITVALE, IncidentStatus.VERIFIED, dispatcher)
    alert = actions.compose(
        actor=dispatcher,
        incident=incident,
        kind=AlertKind.ALERT,
        radius_m=1000,
        bodies={"en": "VERIFIED: agents at 35th.", "es": "VERIFICADO: agentes en la 35."},
    )
    actions.approve(actor=approver, alert=alert)
    assert actions.fan_out(alert.pk) == RECIPIENTS
    twilio_api.state.latency_seconds = 0.02  # each send is in flight for a while

    # Kill the worker mid-batch until one kill lands while the provider has accepted a
    # message whose row is not yet marked sent: the case a plain retry would duplicate.
    cut_short = 0
    for _attempt in range(5):
        before = len(twilio_api.messages)
        worker = start_worker(twilio_api.url)
        try:
            wait_for(lambda b=before: len(twilio_api.messages) >= b + 37, 60, worker)
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        finally:
            if worker.poll() is None:
                worker.kill()
        time.sleep(0.1)  # a request the worker had in flight reaches the stand-in
        assert OutboxMessage.objects.filter(status=OutboxStatus.SENDING).exists()
        sent_rows = OutboxMessage.objects.filter(status=OutboxStatus.SENT).count()
        cut_short += len(twilio_api.messages) - sent_rows
        # Time passes: the dead worker's sender lock and leases run out, and the sweep
        # settles its batch, asking the provider what it accepted.
        cache.delete("exclusive:outbox-sender")
        outbox.release_expired_leases(now=timezone.now() + outbox.LEASE + timedelta(seconds=1))
        assert not OutboxMessage.objects.filter(status=OutboxStatus.SENDING).exists()
        if cut_short:
            break
    assert cut_short > 0, "no kill landed while a message was in flight"

    restarted = start_worker(twilio_api.url)
    try:
        wait_for(lambda: unsettled() == 0, 60, restarted)
    finally:
        restarted.kill()
        restarted.wait(timeout=10)

    received = collections.Counter(m.to for m in twilio_api.messages)
    phones = {p.contact.phone for p in people}
    assert set(received) <= phones
    assert all(count == 1 for count in received.values()), received.most_common(3)
    rows = OutboxMessage.objects.filter(batch=alert.batch)
    assert rows.count() == RECIPIENTS
    statuses = collections.Counter(rows.values_list("status", flat=True))
    assert set(statuses) <= {OutboxStatus.SENT, OutboxStatus.EXPIRED}
    assert statuses[OutboxStatus.SENT] == len(received)

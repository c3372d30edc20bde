"""PostgreSQL stops in the middle of a surge of texts: every webhook is still answered,
and once it is back every message is stored exactly once, the spooled ones in the order
they arrived.

The surge lasts RR_SURGE_SECONDS (CI: 60) at RR_SURGE_RATE texts a second; PostgreSQL
is down for RR_OUTAGE_SECONDS (CI: 15) in the middle.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
import urllib.parse
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from django.test import override_settings

from conftest import sign
from messaging import spool
from tests.reliability.conftest import PUBLIC_URL, AppEnv, wait_until

SURGE_SECONDS = float(os.environ.get("RR_SURGE_SECONDS", "20"))
OUTAGE_SECONDS = float(os.environ.get("RR_OUTAGE_SECONDS", "6"))
RATE = float(os.environ.get("RR_SURGE_RATE", "10"))
PATH = "/hooks/twilio/sms"
# A surge comes from many neighbours: each phone sends fewer texts than the per-sender
# limit (intake.throttle, 5 per 10 minutes), so every text opens a report and is
# acknowledged, which the test counts.
TEXTS_PER_SENDER = 4
# Twilio gives up on a webhook after 15 s.
TWILIO_TIMEOUT = 15.0


@dataclass
class Answer:
    sid: str
    status: int
    body: str
    seconds: float


def post_sms(port: int, sid: str, sender: str, text: str) -> Answer:
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "ACtest",
        "From": sender,
        "To": "+15105550000",
        "Body": text,
        "NumMedia": "0",
    }
    payload = urllib.parse.urlencode(params)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": sign(PUBLIC_URL + PATH, params),
    }
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TWILIO_TIMEOUT + 5)
    try:
        conn.request("POST", PATH, body=payload, headers=headers)
        response = conn.getresponse()
        return Answer(sid, response.status, response.read().decode(), time.monotonic() - started)
    finally:
        conn.close()


def sender_of(n: int) -> str:
    return f"+1510555{n // TEXTS_PER_SENDER:04d}"  # real-looking numbers: 555-0000 up


def spooled_sids(directory: Path) -> list[str]:
    with override_settings(RR_SPOOL_DIR=directory):
        names = []
        for path in spool._files():
            try:
                names.append(spool.read(path).provider_sid)
            except (ValueError, FileNotFoundError):
                continue  # replayed meanwhile
        return names


def test_a_database_outage_during_a_surge_loses_and_repeats_nothing(app_env: AppEnv) -> None:
    server = app_env.web_server()
    cluster = app_env.cluster
    spool_dir = app_env.var_dir / "spool"
    total = int(SURGE_SECONDS * RATE)
    outage_at = (SURGE_SECONDS - OUTAGE_SECONDS) / 2
    futures: list[Future[Answer]] = []
    snapshot: list[str] = []
    outage: dict[str, float] = {}

    def database_outage() -> None:
        time.sleep(outage_at)
        outage["stopped"] = time.monotonic()
        cluster.stop("fast")
        time.sleep(OUTAGE_SECONDS)
        snapshot.extend(spooled_sids(spool_dir))
        outage["starting"] = time.monotonic()
        cluster.start()

    chaos = threading.Thread(target=database_outage)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=int(RATE * TWILIO_TIMEOUT) + 8) as pool:
        chaos.start()
        for n in range(total):
            # A steady rate, whatever the answers' latency: each text has its own slot.
            delay = started + n / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sender = sender_of(n)
            text = f"Agents at corner {n} of International Blvd, two vans"
            futures.append(pool.submit(post_sms, server.port, f"SM{n:032d}", sender, text))
        answers = [future.result() for future in futures]
    chaos.join()

    bad = [(a.sid, a.status, a.body[:200]) for a in answers if a.status != 200]
    latencies = sorted(a.seconds for a in answers)
    assert not bad, f"{len(bad)} webhooks were not answered 200: {bad[:5]}"
    slowest = max(a.seconds for a in answers)
    assert slowest < TWILIO_TIMEOUT, f"a webhook took {slowest:.1f}s; Twilio waits 15 s"
    acknowledged = sum("received your report" in a.body for a in answers)
    assert acknowledged == total, f"{total - acknowledged} answers had no acknowledgement"
    assert snapshot, "no message was spooled: the outage did not land in the surge"

    # The web process replays on its own once the database is back.
    wait_until(lambda: not any(spool_dir.glob("*.sms")), within=60, what="the spool to drain")
    rows = app_env.sql(
        "SELECT provider_sid, count(*), min(id) FROM messaging_inboundmessage GROUP BY provider_sid"
    )
    counts = {sid: count for sid, count, _ in rows}
    sent = {a.sid for a in answers}
    assert set(counts) == sent, f"missing: {sorted(sent - set(counts))[:5]}"
    assert all(count == 1 for count in counts.values())
    ids = {sid: first_id for sid, _, first_id in rows}
    replayed = [ids[sid] for sid in snapshot]
    assert replayed == sorted(replayed), "spooled messages were stored out of arrival order"
    assert not (spool_dir / spool.CORRUPT_DIR).exists()

    # Every stored text becomes a report (the worker processes them after the outage).
    worker = app_env.spawn(["manage.py", "run_worker"], log="worker")
    wait_until(
        lambda: app_env.sql("SELECT count(*) FROM intake_report")[0][0] == total,
        within=120,
        what="every text to become a report",
        every=0.5,
    )
    worker.kill()
    server.stop()
    log = app_env.log("web") + app_env.log("worker")
    for secret in ("International Blvd", sender_of(0), sender_of(0)[2:]):
        assert secret not in log
    print(  # the measurements, for the CI log
        f"\n{total} texts at {RATE:g}/s, PostgreSQL down {OUTAGE_SECONDS:g}s: "
        f"{len(snapshot)} spooled; answers p50 {latencies[len(latencies) // 2]:.3f}s, "
        f"p99 {latencies[int(len(latencies) * 0.99)]:.3f}s, slowest {slowest:.2f}s"
    )

"""Benchmarks, each reported as a ratio to a floor measured in the same run.

    python bench/run.py [--quick] [--only intake,matching]

- intake: signed SMS webhooks per second through the real ASGI server, divided by a
  hello-world view (/healthz) on the same server and settings; latency percentiles of
  both. Closed loop, loopback only.
- matching: finding the incident for one report among 10,000 open incidents through the
  H3 cell index, against a scan of every incident that applies the same rule.
- responders: the nearest available Spanish-speaking verifiers among 10,000 responders,
  against a Python loop over all of them.
- fanout: the outbox rows of an alert to 100,000 subscribers written in bulk, nearest
  first, against one INSERT per row; and the cost of running the fan-out again.
- pacing: the sender against the Twilio stand-in limited to 50 messages a second:
  achieved rate over configured rate, and 429s paced against unpaced.

Results go to bench/results/<git sha>.json and are printed as a table. The database is
a fresh SQLite file unless DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
TOKEN = "bench-auth-token"  # noqa: S105 - signs loopback requests only
PUBLIC_URL = "http://bench.invalid"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))
    return ordered[index]


@contextlib.contextmanager
def fresh_database(tmp: str) -> Iterator[str]:
    """A new, empty database for one benchmark: a SQLite file, or (with DATABASE_URL) a
    PostgreSQL database created next to the given one and dropped afterwards."""
    base = os.environ.get("DATABASE_URL")
    if not base:
        yield f"sqlite:///{tmp}/bench.sqlite3"
        return
    import psycopg

    parts = urllib.parse.urlsplit(base)
    name = f"rr_bench_{os.getpid()}_{random.randrange(10**6)}"
    admin = parts._replace(path="/postgres").geturl().replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        # The name is ours (pid and a random number); CREATE DATABASE takes no parameters.
        # nosemgrep: django-raw-sql-formatted
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parts._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            # nosemgrep: django-raw-sql-formatted - our own name, as above
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_env(database_url: str) -> dict[str, str]:
    from core.crypto import generate_key

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "rapidresponse.settings",
        "SECRET_KEY": "bench-" + "s" * 44,
        "RR_FIELD_KEYS": "b1:" + generate_key(),
        "RR_HASH_KEY": generate_key(),
        "DATABASE_URL": database_url,
        "ALLOWED_HOSTS": "127.0.0.1,bench.invalid",
        "RR_PUBLIC_URL": PUBLIC_URL,
        "RR_SMS_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": "ACbench",
        "TWILIO_AUTH_TOKEN": TOKEN,
        "RR_SSL_REDIRECT": "0",
        "RR_LOG_LEVEL": "WARNING",
        # A loopback flood from one client is the point here, not something to limit.
        "RR_WEB_REPORTS_PER_HOUR": "1000000",
    }


def load(
    port: int, path: str, bodies: list[tuple[bytes, dict[str, str]]], seconds: float, threads: int
) -> tuple[int, list[float], int]:
    """Closed loop: each thread sends the next request as soon as the last answered."""
    latencies: list[float] = []
    errors = 0
    count = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    cursor = iter(range(10**9))

    def worker() -> None:
        nonlocal errors, count
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine: list[float] = []
        bad = 0
        while time.monotonic() < stop_at:
            with lock:
                i = next(cursor)
            body, headers = bodies[i % len(bodies)]
            started = time.perf_counter()
            conn.request("POST" if body else "GET", path, body=body or None, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            if response.status != 200:
                bad += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            errors += bad
            count += len(mine)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return count, latencies, errors


def signed_sms_bodies(n: int) -> list[tuple[bytes, dict[str, str]]]:
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(TOKEN)
    bodies = []
    for i in range(n):
        params = {
            "MessageSid": f"SMbench{i:08d}{random.randrange(10**6):06d}",
            "From": f"+1510555{i % 10000:04d}",
            "To": "+15105550000",
            "Body": random.choice(
                ["ICE agents at the bus stop on 35th", "La migra está en la tienda", "vans outside"]
            ),
            "NumMedia": "0",
        }
        signature = validator.compute_signature(f"{PUBLIC_URL}/hooks/twilio/sms", params)
        bodies.append(
            (
                urllib.parse.urlencode(params).encode(),
                {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": signature,
                    "Host": "bench.invalid",
                },
            )
        )
    return bodies


def bench_intake(quick: bool) -> dict[str, Any]:
    seconds = 5.0 if quick else 15.0
    threads = 16
    with tempfile.TemporaryDirectory() as tmp, fresh_database(tmp) as database_url:
        env = bench_env(database_url)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True
        )
        port = free_port()
        server = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "uvicorn",
                "rapidresponse.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--lifespan",
                "off",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            hello = [(b"", {"Host": "bench.invalid"})]
            load(port, "/healthz", hello, 1.0, threads)  # warm up
            floor_n, floor_lat, floor_err = load(port, "/healthz", hello, seconds, threads)
            bodies = signed_sms_bodies(200_000)
            load(port, "/hooks/twilio/sms", bodies[-2000:], 1.0, threads)  # warm up
            ours_n, ours_lat, ours_err = load(port, "/hooks/twilio/sms", bodies, seconds, threads)
        finally:
            server.terminate()
            server.wait(timeout=10)
    floor_rps = floor_n / seconds
    ours_rps = ours_n / seconds
    return {
        "name": "intake: signed SMS webhook vs hello-world view (1 uvicorn process)",
        "database": database_url.split(":", 1)[0],
        "ours_rps": round(ours_rps, 1),
        "floor_rps": round(floor_rps, 1),
        "ratio": round(ours_rps / floor_rps, 3),
        "target_ratio": 0.5,
        "ours_p50_ms": round(percentile(ours_lat, 50) * 1000, 1),
        "ours_p99_ms": round(percentile(ours_lat, 99) * 1000, 1),
        "floor_p99_ms": round(percentile(floor_lat, 99) * 1000, 1),
        "errors": ours_err + floor_err,
        "note": f"closed loop, {threads} client threads, {seconds:.0f} s each",
    }


def bench_matching(quick: bool) -> dict[str, Any]:
    import django

    with tempfile.TemporaryDirectory() as tmp, fresh_database(tmp) as database_url:
        os.environ.update(bench_env(database_url))
        django.setup()
        from django.core.management import call_command
        from django.utils import timezone

        from core.geo import Point, distance_meters
        from incidents import matching
        from incidents.models import Incident

        call_command("migrate", verbosity=0)
        rng = random.Random(7)
        now = timezone.now()
        incidents = 10_000
        rows = []
        # A metropolitan area about 60 km across, activity over the last 6 hours.
        for _ in range(incidents):
            point = Point(37.5 + rng.random() * 0.55, -122.5 + rng.random() * 0.7)
            seen = now - timedelta(minutes=rng.randrange(0, 360))
            rows.append(
                Incident(
                    lat=point.lat,
                    lng=point.lng,
                    h3_cell=point.cell(),
                    first_seen=seen - timedelta(minutes=rng.randrange(0, 30)),
                    last_seen=seen,
                )
            )
        Incident.objects.bulk_create(rows, batch_size=1000)
        queries = [
            Point(37.5 + rng.random() * 0.55, -122.5 + rng.random() * 0.7)
            for _ in range(200 if quick else 1000)
        ]

        def naive(point: Point) -> Incident | None:
            admitted = [i for i in Incident.objects.all() if matching.is_within(i, point, now)]
            if not admitted:
                return None
            return min(
                admitted,
                key=lambda i: (distance_meters(i.point, point), -i.last_seen.timestamp()),
            )

        indexed_times = []
        same = 0
        for point in queries:
            started = time.perf_counter()
            found = matching.find_incident(point, now)
            indexed_times.append(time.perf_counter() - started)
        naive_times = []
        for point in queries[: len(queries) // 10]:
            started = time.perf_counter()
            expected = naive(point)
            naive_times.append(time.perf_counter() - started)
            found = matching.find_incident(point, now)
            same += int((found.pk if found else None) == (expected.pk if expected else None))
        checked = len(naive_times)
    return {
        "name": "matching: one report against 10,000 open incidents",
        "database": database_url.split(":", 1)[0],
        "indexed_p50_ms": round(percentile(indexed_times, 50) * 1000, 3),
        "indexed_p99_ms": round(percentile(indexed_times, 99) * 1000, 3),
        "scan_p50_ms": round(percentile(naive_times, 50) * 1000, 1),
        "speedup": round(statistics.median(naive_times) / statistics.median(indexed_times), 1),
        "identical_results": f"{same}/{checked}",
        "target_p99_ms": 2.0,
    }


def bench_responders(quick: bool) -> dict[str, Any]:
    """Nearest available verifiers who speak Spanish among 10,000 responders, through the
    cell index, against a pure-Python loop over every responder held in memory."""
    import django

    with tempfile.TemporaryDirectory() as tmp, fresh_database(tmp) as database_url:
        os.environ.update(bench_env(database_url))
        django.setup()
        from django.core.management import call_command

        from core.geo import Point, distance_meters
        from dispatch.matching import COARSE_RESOLUTION, FINE_RESOLUTION, nearest_responders
        from dispatch.models import LANGUAGE_BITS, ROLE_BITS, Responder

        call_command("migrate", verbosity=0)
        rng = random.Random(11)
        rows = []
        for i in range(10_000):
            point = Point(37.5 + rng.random() * 0.55, -122.5 + rng.random() * 0.7)
            rows.append(
                Responder(
                    name=f"R{i}",
                    phone=f"+1510{i:07d}",
                    phone_hash=f"{i:064d}",
                    roles=rng.choice([1, 1, 3, 2, 4]),
                    languages=rng.choice([1, 2, 3, 3]),
                    available=rng.random() < 0.5,
                    active=rng.random() < 0.95,
                    lat=point.lat,
                    lng=point.lng,
                    h3_cell=point.cell(FINE_RESOLUTION),
                    h3_coarse=point.cell(COARSE_RESOLUTION),
                )
            )
        # Encrypted fields need each row's own context: save through the model.
        for row in rows:
            row.save()
        queries = [
            Point(37.5 + rng.random() * 0.55, -122.5 + rng.random() * 0.7)
            for _ in range(200 if quick else 1000)
        ]
        times = []
        results = []
        for point in queries:
            started = time.perf_counter()
            found = nearest_responders(point, role="verifier", language="es", limit=5)
            times.append(time.perf_counter() - started)
            results.append([c.responder.pk for c in found])
        verifier, spanish = ROLE_BITS["verifier"], LANGUAGE_BITS["es"]
        loop_times = []
        same = 0
        for point, expected in zip(queries, results, strict=True):
            started = time.perf_counter()
            # The naive way: read every responder, then filter and measure in Python.
            everyone = Responder.objects.values_list(
                "pk", "roles", "languages", "available", "active", "lat", "lng"
            )
            scored = sorted(
                (distance_meters(point, Point(lat, lng)), pk)
                for pk, roles, languages, available, active, lat, lng in everyone
                if active
                and available
                and roles & verifier
                and languages & spanish
                and lat is not None
                and lng is not None
            )
            nearest = [pk for d, pk in scored if d <= 30_000][:5]
            loop_times.append(time.perf_counter() - started)
            same += int(nearest == expected)
    return {
        "name": "responders: 5 nearest available Spanish-speaking verifiers among 10,000",
        "database": database_url.split(":", 1)[0],
        "indexed_p50_ms": round(percentile(times, 50) * 1000, 3),
        "indexed_p99_ms": round(percentile(times, 99) * 1000, 3),
        "python_loop_p50_ms": round(percentile(loop_times, 50) * 1000, 2),
        "speedup": round(statistics.median(loop_times) / statistics.median(times), 1),
        "identical_results": f"{same}/{len(queries)}",
        "target_p99_ms": 5.0,
        "target_speedup": 10.0,
    }


def _subscribers(count: int, centre: Any) -> None:
    """``count`` active subscribers within 4 km of ``centre``, three cells each. Contacts
    are saved one by one (each row's phone is encrypted with its own context); the rest
    goes in bulk. Setup, not measured."""
    import h3
    from django.db import transaction

    from alerts.models import Subscriber, SubscriberCell, SubscriberStatus
    from core.geo import Point
    from messaging.models import Contact

    rng = random.Random(5)
    with transaction.atomic():
        contacts = []
        for i in range(count):
            contact = Contact(phone=f"+1415{i:07d}", phone_hash=f"c{i:063d}")
            contact.save()
            contacts.append(contact)
        Subscriber.objects.bulk_create(
            [
                Subscriber(
                    contact=contact,
                    phone_hash=contact.phone_hash,
                    language="es" if i % 2 else "en",
                    status=SubscriberStatus.ACTIVE,
                )
                for i, contact in enumerate(contacts)
            ],
            batch_size=5000,
        )
        cells: list[Any] = []
        for subscriber_id in Subscriber.objects.values_list("pk", flat=True).iterator():
            point = Point(
                centre.lat + (rng.random() - 0.5) * 0.07, centre.lng + (rng.random() - 0.5) * 0.09
            )
            home = point.cell(8)
            cells.extend(
                SubscriberCell(subscriber_id=subscriber_id, h3_cell=h3.str_to_int(cell))
                for cell in h3.grid_disk(h3.int_to_str(home), 1)[:3]
            )
        SubscriberCell.objects.bulk_create(cells, batch_size=10_000, ignore_conflicts=True)


def _verified_alert(radius_m: int) -> Any:
    from django.utils import timezone

    from accounts.models import Role, User
    from alerts.models import Alert, AlertKind, AlertStatus
    from core.geo import Point
    from incidents.models import Incident, IncidentStatus

    composer = User.objects.create(username="composer", role=Role.DISPATCHER)
    point = Point(37.7766, -122.2265)
    now = timezone.now()
    incident = Incident.objects.create(
        status=IncidentStatus.VERIFIED,
        lat=point.lat,
        lng=point.lng,
        h3_cell=point.cell(),
        first_seen=now,
        last_seen=now,
    )
    return Alert.objects.create(
        incident=incident,
        kind=AlertKind.ALERT,
        status=AlertStatus.SENDING,
        radius_m=radius_m,
        bodies={"en": "VERIFIED: agents at 35th.", "es": "VERIFICADO: agentes en la 35."},
        composed_by=composer,
        approved_by=composer,
    )


def bench_fanout(quick: bool) -> dict[str, Any]:
    """Writing one outbox row per recipient of an alert to 100,000 subscribers, nearest
    first, against: the same rows through a raw executemany into a scratch table (the
    floor), one ORM INSERT per row, and one queued task per recipient (the anti-peer);
    the last two measured on a sample and extrapolated."""
    import django

    count = 10_000 if quick else 100_000
    sample = 2000
    with tempfile.TemporaryDirectory() as tmp, fresh_database(tmp) as database_url:
        os.environ.update(bench_env(database_url))
        django.setup()
        from django.core.management import call_command
        from django.db import connection, transaction

        from alerts import actions
        from core.geo import Point
        from messaging.models import OutboxMessage
        from messaging.tasks import send_queued_messages

        call_command("migrate", verbosity=0)
        _subscribers(count, Point(37.7766, -122.2265))
        alert = _verified_alert(radius_m=10_000)
        started = time.perf_counter()
        total = actions.fan_out(alert.pk)
        fan_out_seconds = time.perf_counter() - started
        # Run again (a worker restarted mid-fan-out): nothing new is written.
        started = time.perf_counter()
        again = actions.fan_out(alert.pk)
        rerun_seconds = time.perf_counter() - started
        written = OutboxMessage.objects.filter(batch=alert.batch)

        table = OutboxMessage._meta.db_table
        columns = [f.column for f in OutboxMessage._meta.concrete_fields]
        names = ", ".join(connection.ops.quote_name(c) for c in columns)
        # Table and column names come from the model's metadata; values are parameters.
        with connection.cursor() as cursor:
            select = f"SELECT {names} FROM {table}"  # noqa: S608  # nosec B608
            cursor.execute(select + " WHERE batch = %s", [alert.batch])
            rows = cursor.fetchall()
            cursor.execute("CREATE TABLE scratch AS " + select + " WHERE 1 = 0")
            marks = ", ".join(["%s"] * len(columns))
            insert = f"INSERT INTO scratch ({names}) VALUES ({marks})"  # noqa: S608  # nosec B608
            started = time.perf_counter()
            with transaction.atomic():
                cursor.executemany(insert, rows)
            raw_seconds = time.perf_counter() - started

        some = list(written.order_by("priority")[:sample])
        started = time.perf_counter()
        with transaction.atomic():
            for row in some:
                row.pk = None
                row.uuid = uuid.uuid4()
                row.dedupe_key = None
                row.batch = "one-by-one"
                row.save()
        per_insert = (time.perf_counter() - started) / sample
        started = time.perf_counter()
        with transaction.atomic():
            for _ in range(sample):
                send_queued_messages.enqueue()
        per_task = (time.perf_counter() - started) / sample
    return {
        "name": f"fan-out: one outbox row per recipient, {count:,} subscribers",
        "database": database_url.split(":", 1)[0],
        "rows": total,
        "rows_added_by_a_rerun": again - total,
        "fan_out_seconds": round(fan_out_seconds, 2),
        "rows_per_second": round(total / fan_out_seconds),
        "rerun_seconds": round(rerun_seconds, 2),
        "raw_executemany_seconds": round(raw_seconds, 2),
        "raw_over_ours": round(raw_seconds / fan_out_seconds, 2),
        "one_insert_per_row_seconds": round(per_insert * total, 1),
        "one_task_per_recipient_seconds": round(per_task * total, 1),
        "faster_than_task_per_recipient": round(per_task * total / fan_out_seconds, 1),
        "target_seconds": 5.0 if database_url.startswith("sqlite") else 2.0,
        "target_raw_over_ours": 0.2,
    }


def _busiest_second(times: list[float]) -> int:
    """The most arrivals in any one-second sliding window."""
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def _queue_ranked(n: int, prefix: str, rng: random.Random) -> dict[str, int]:
    """n queued messages with shuffled priorities (the distance ranks of an alert)."""
    from django.db import transaction

    from messaging import outbox
    from messaging.models import OutboxKind, OutboxMessage

    ranks = list(range(n))
    rng.shuffle(ranks)
    by_number = {}
    with transaction.atomic():
        for i, rank in enumerate(ranks):
            number = f"+1{prefix}{i:07d}"
            message = outbox.queue_sms(
                to=number, body="Alert", language="en", kind=OutboxKind.ALERT
            )
            OutboxMessage.objects.filter(pk=message.pk).update(priority=rank)
            by_number[number] = rank
    return by_number


@contextlib.contextmanager
def standin_process(*, latency: float, max_concurrent: int, rate: float | None) -> Iterator[str]:
    """The Twilio stand-in in its own process, as the real API is on other machines."""
    command = [
        sys.executable,
        "-m",
        "messaging.providers.twilio.standin",
        "--account-sid",
        "ACbench",
        "--auth-token",
        TOKEN,
        "--latency",
        str(latency),
        "--max-concurrent",
        str(max_concurrent),
    ] + (["--rate", str(rate)] if rate else [])
    process = subprocess.Popen(  # noqa: S603 - our interpreter, loopback only
        command, cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.kill()
        process.wait(timeout=10)


def _drain_through(
    url: str, rate: float, count: int, prefix: str, rng: random.Random
) -> dict[str, Any]:
    """Queue ``count`` ranked messages, drain them through the stand-in at ``url`` at
    ``rate``, and say how it went, measured where the sends leave the sender."""
    from django.conf import settings
    from django.utils import timezone

    from messaging import outbox
    from messaging.models import OutboxMessage

    settings.TWILIO_API_BASE = url
    queued_from = timezone.now()
    settings.RR_SMS_RATE_PER_SECOND = rate
    ranks = _queue_ranked(count, prefix, rng)
    sends: list[float] = []
    order: list[int] = []
    send = outbox._send

    def timed_send(message: Any, provider_name: str) -> Any:
        sends.append(time.monotonic())
        order.append(ranks[message.contact.phone])
        return send(message, provider_name)

    outbox._send = timed_send
    started = time.perf_counter()
    cpu = time.process_time()
    try:
        deadline = time.monotonic() + count / rate * 3 + 10
        while outbox.due_count() and time.monotonic() < deadline:
            outbox.send_due(budget_seconds=60)
    finally:
        outbox._send = send
    elapsed = time.perf_counter() - started
    sends.sort()
    rows = OutboxMessage.objects.filter(created_at__gte=queued_from)
    first_tenth = order[: len(order) // 10]
    return {
        "achieved": rows.filter(status="sent").count() / elapsed,
        "steady": (len(sends) - 1) / (sends[-1] - sends[0]) if len(sends) > 1 else 0.0,
        "busiest_second": _busiest_second(sends),
        "requests": len(sends),
        "refused_429": rows.filter(error_code="20429").count(),
        "nearest_first": bool(first_tenth) and max(first_tenth) <= count // 2,
        "cpu_seconds": time.process_time() - cpu,
    }


def bench_pacing(quick: bool) -> dict[str, Any]:
    """The sender against the Twilio stand-in in its own process (50 ms a request, 429
    above 100 at once, as Twilio's API does): at the configured rate it should keep close
    to it, never start more than the rate (and one) in any second, get no 429, and send
    nearest first. Twilio queues what exceeds a number's rate (until it expires); a
    provider that refuses it instead shows what an unpaced sender, told it may go 20
    times faster, runs into. Last, the most this sender can do on this machine."""
    import django

    rate = 100 if quick else 200
    seconds = 5 if quick else 15
    count = int(rate * seconds)
    with tempfile.TemporaryDirectory() as tmp, fresh_database(tmp) as database_url:
        os.environ.update(bench_env(database_url))
        os.environ["RR_SMS_FROM"] = "+15105550000"
        os.environ["RR_SMS_MAX_IN_FLIGHT"] = "90"
        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        rng = random.Random(3)
        with standin_process(latency=0.05, max_concurrent=100, rate=None) as url:
            paced = _drain_through(url, rate, count, "415", rng)
        with standin_process(latency=0.05, max_concurrent=100, rate=rate) as url:
            unpaced = _drain_through(url, rate * 20, count, "416", rng)
        with standin_process(latency=0.05, max_concurrent=100, rate=None) as url:
            flat_out = _drain_through(url, 100_000, count, "417", rng)
    return {
        "name": f"pacing: {count:,} messages through a sender allowed {rate}/s",
        "database": database_url.split(":", 1)[0],
        "configured_per_second": rate,
        "achieved_per_second": round(paced["achieved"], 1),
        "achieved_ratio": round(paced["achieved"] / rate, 3),
        "steady_state_ratio": round(paced["steady"] / rate, 3),
        "busiest_second": paced["busiest_second"],
        "paced_429s": paced["refused_429"],
        "nearest_first": paced["nearest_first"],
        "sender_cpu_per_message_ms": round(paced["cpu_seconds"] / count * 1000, 2),
        "unpaced_429s": unpaced["refused_429"],
        "most_this_sender_can_do_per_second": round(flat_out["steady"]),
        "target_ratio": 0.95,
    }


BENCHES = {
    "intake": bench_intake,
    "matching": bench_matching,
    "responders": bench_responders,
    "fanout": bench_fanout,
    "pacing": bench_pacing,
}


def git_sha() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(BENCHES))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        # One benchmark per process: each sets Django up on its own fresh database.
        print(json.dumps(BENCHES[args.child](args.quick)))
        return 0
    results = []
    for name in args.only.split(","):
        print(f"running {name}…", flush=True)
        command = [sys.executable, __file__, "--child", name] + (["--quick"] if args.quick else [])
        done = subprocess.run(  # noqa: S603 - this script, in a fresh interpreter
            command, cwd=ROOT, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return done.returncode
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{git_sha()}.json"
    out.write_text(
        json.dumps(
            {"cpus": os.cpu_count(), "python": sys.version.split()[0], "results": results},
            indent=2,
        )
    )
    for result in results:
        print()
        for key, value in result.items():
            print(f"  {key:<20} {value}")
    print(f"\nwritten to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

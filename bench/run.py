"""Benchmarks, each reported as a ratio to a floor measured in the same run.

    python bench/run.py [--quick] [--only intake,matching]

- intake: signed SMS webhooks per second through the real ASGI server, divided by a
  hello-world view (/healthz) on the same server and settings; latency percentiles of
  both. Closed loop, loopback only.
- matching: finding the incident for one report among 10,000 open incidents through the
  H3 cell index, against a scan of every incident that applies the same rule.

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
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parts._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
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


BENCHES = {"intake": bench_intake, "matching": bench_matching, "responders": bench_responders}


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

"""Benchmarks, each reported as a ratio to a floor measured in the same run.

    python bench/run.py [--quick] [--only intake,voice,surge,...]

- B1 intake: signed SMS webhooks per second through the real ASGI server, divided by a
  hello-world view (/healthz) on the same server and settings (closed loop); then
  latency at a fixed 300 requests a second (open loop), the hello view's beside it.
  Voice: calls to the hotline with nobody on shift (menu, key press, recording, hang-up:
  five signed webhooks each, every one following the TwiML before it), closed loop
  against as many hello requests per session, then open loop at 10 calls a second.
- B2 surge: a replay of reports about ~30 events with a burst, through the webhook and
  the real worker: POST to incident attached, backlog drain, grouping F1 against the
  events; the floor is the same replay of reports without a place (no matching).
- B3 matching: one report among 10,000 open incidents through the H3 cell index,
  against a scan of every incident with the same rule; and grouping 2,000 reports
  incrementally against a naive pairwise pass (each report against every incident),
  with the two groupings compared.
- B4 responders: the nearest available Spanish-speaking verifiers among 10,000,
  against a Python loop over all of them.
- B5 fan-out: an alert's outbox rows for 100,000 subscribers, against a raw
  executemany of the same rows; B8 the carrier arithmetic of that alert.
- B6 pacing: the sender against the Twilio stand-in: achieved over configured rate,
  429s, nearest-first order.
- B7 live: console updates to 200 server-sent-event clients, against a bare asyncio
  fan-out to the same 200 clients.

Results go to bench/results/<git sha>.json and are printed as a table. The database is
a fresh SQLite file unless DATABASE_URL is set (REDIS_URL is passed on). Exit status is
0 whether or not targets are met: this is a report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import platform
import random
import shutil
import signal
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

from bench import lib  # noqa: E402 - after the path is set
from bench.lib import Target, percentile, targets  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TOKEN = "bench-auth-token"  # noqa: S105 - signs loopback requests only
PUBLIC_URL = "http://bench.invalid"
HOST = "bench.invalid"


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def backend(database_url: str) -> str:
    return "postgresql" if database_url.startswith("postgres") else "sqlite"


@contextlib.contextmanager
def fresh_database(tmp: str) -> Iterator[str]:
    """A new database for one benchmark: a SQLite file, or (with DATABASE_URL) a
    PostgreSQL database created next to the given one and dropped afterwards. When the
    run has migrated a template (RR_BENCH_TEMPLATE), it is a copy of that."""
    base = os.environ.get("DATABASE_URL")
    template = os.environ.get("RR_BENCH_TEMPLATE", "")
    if not base:
        path = Path(tmp, f"bench-{random.randrange(10**6)}.sqlite3")
        if template:
            shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    import psycopg

    parts = urllib.parse.urlsplit(base)
    name = f"rr_bench_{os.getpid()}_{random.randrange(10**6)}"
    admin = parts._replace(path="/postgres").geturl().replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        # The name is ours (pid and a random number); CREATE DATABASE takes no parameters.
        # nosemgrep: django-raw-sql-formatted
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield parts._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            # nosemgrep: django-raw-sql-formatted - our own name, as above
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def template_database() -> Iterator[str]:
    """Migrate once per run; each benchmark starts from a copy (saves a migration per
    benchmark, which is most of a quick run's setup)."""
    os.environ.pop("RR_BENCH_TEMPLATE", None)
    with tempfile.TemporaryDirectory() as tmp, fresh_database(tmp) as database_url:
        migrate(bench_env(database_url, tmp))
        if database_url.startswith("sqlite"):
            path = database_url.removeprefix("sqlite:///")
            import sqlite3

            # Fold the write-ahead log into the file, so a copy of the file is complete.
            with contextlib.closing(sqlite3.connect(path)) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            yield path
        else:
            yield urllib.parse.urlsplit(database_url).path.lstrip("/")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_env(database_url: str, var_dir: str) -> dict[str, str]:
    from core.crypto import generate_key

    Path(var_dir, "static").mkdir(exist_ok=True)  # so WhiteNoise finds its directory

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "rapidresponse.settings",
        "SECRET_KEY": "bench-" + "s" * 44,
        "RR_FIELD_KEYS": "b1:" + generate_key(),
        "RR_HASH_KEY": generate_key(),
        "RR_ALTCHA_HMAC_KEY": generate_key(),
        "DATABASE_URL": database_url,
        "RR_VAR_DIR": var_dir,
        "ALLOWED_HOSTS": f"127.0.0.1,{HOST}",
        "RR_PUBLIC_URL": PUBLIC_URL,
        "RR_SMS_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": "ACbench",
        "TWILIO_AUTH_TOKEN": TOKEN,
        # Loopback only: with accept first the workers send replies through the outbox,
        # and a send must never leave the machine. Nothing listens on a fresh port, so
        # each fails at once and waits for its retry (B6 runs its own stand-in).
        "TWILIO_API_BASE": f"http://127.0.0.1:{free_port()}",
        "RR_SSL_REDIRECT": "0",
        "RR_LOG_LEVEL": "WARNING",
        # A loopback flood from one client is the point here, not something to limit.
        "RR_WEB_REPORTS_PER_HOUR": "1000000",
        # As in production (docs/DEPLOY.md): the webhook accepts, the workers store.
        "RR_SMS_ACCEPT_FIRST": "1",
    }


def setup_django(database_url: str, tmp: str) -> None:
    import django

    os.environ.update(bench_env(database_url, tmp))
    django.setup()
    from django.core.management import call_command

    if not os.environ.get("RR_BENCH_TEMPLATE"):
        call_command("migrate", verbosity=0)


def wait_for_port(port: int, process: subprocess.Popen[Any], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start") from None
            time.sleep(0.1)


@contextlib.contextmanager
def asgi_server(env: dict[str, str]) -> Iterator[int]:
    """The product's ASGI application under uvicorn, one process, as `make run` has it."""
    port = free_port()
    server = subprocess.Popen(  # noqa: S603 - our interpreter, loopback only
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
        wait_for_port(port, server)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


@contextlib.contextmanager
def worker_process(env: dict[str, str]) -> Iterator[subprocess.Popen[Any]]:
    """`manage.py run_worker`, the real task worker and its periodic sweeps."""
    worker = subprocess.Popen([sys.executable, "manage.py", "run_worker"], cwd=ROOT, env=env)
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)


def migrate(env: dict[str, str]) -> None:
    if env.get("RR_BENCH_TEMPLATE"):
        return  # a copy of the migrated template
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


def closed_loop(
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


SMS_TEXTS = (
    "ICE agents at the bus stop on 35th",
    "La migra está en la tienda",
    "vans outside",
    "Hay agentes de inmigración en la esquina",
)


def signed_sms(params: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    from twilio.request_validator import RequestValidator

    signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC_URL}/hooks/twilio/sms", params)
    return (
        urllib.parse.urlencode(params).encode(),
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
            "Host": HOST,
        },
    )


def sms_params(sid: str, sender: str, body: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "From": sender,
        "To": "+15105550000",
        "Body": body,
        "NumMedia": "0",
    }


def signed_sms_bodies(
    n: int, prefix: str, rng: random.Random
) -> list[tuple[bytes, dict[str, str]]]:
    return [
        signed_sms(
            sms_params(f"SM{prefix}{i:08d}", f"+1510555{i % 10000:04d}", rng.choice(SMS_TEXTS))
        )
        for i in range(n)
    ]


def as_requests(
    bodies: list[tuple[bytes, dict[str, str]]], path: str
) -> list[tuple[str, str, bytes, dict[str, str]]]:
    return [("POST" if body else "GET", path, body, headers) for body, headers in bodies]


@contextlib.contextmanager
def production_profile(env: dict[str, str], web: int) -> Iterator[int]:
    """The production profile (``core.serve``): ``web`` uvicorn processes on one socket,
    production settings and checks, no task worker (B1 measures the webhook alone, as
    the one-process run does)."""
    port = free_port()
    env = {k: v for k, v in env.items() if k != "RR_SSL_REDIRECT"}
    process = subprocess.Popen(  # noqa: S603 - our interpreter and module, loopback only
        [
            *(sys.executable, "-m", "core.serve", "--collectstatic", "--web", str(web)),
            *("--workers", "0", "--port", str(port), "--grace", "5"),
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        wait_for_port(port, process, seconds=120)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _measure_intake(
    port: int,
    env: dict[str, str],
    *,
    seconds: float,
    open_seconds: float,
    rate: int,
    threads: int,
    tag: str,
    headers: dict[str, str],
) -> dict[str, Any]:
    """The webhook against the hello view on one server: closed loop for throughput,
    then the same open-loop arrivals for latency."""
    rng = random.Random(1)

    def with_headers(
        bodies: list[tuple[bytes, dict[str, str]]],
    ) -> list[tuple[bytes, dict[str, str]]]:
        return [(body, {**h, **headers}) for body, h in bodies]

    hello = with_headers([(b"", {"Host": HOST})])
    closed_loop(port, "/healthz", hello, 1.0, threads)  # warm up
    floor_n, floor_lat, floor_err = closed_loop(port, "/healthz", hello, seconds, threads)
    bodies = with_headers(signed_sms_bodies(int(1500 * seconds) + 2000, f"c{tag}", rng))
    closed_loop(port, "/hooks/twilio/sms", bodies[-2000:], 1.0, threads)  # warm up
    ours_n, ours_lat, ours_err = closed_loop(
        port, "/hooks/twilio/sms", bodies[:-2000], seconds, threads
    )
    offsets = lib.schedule(rate, open_seconds)
    hello_open = asyncio.run(
        lib.open_loop(port, as_requests(hello, "/healthz"), offsets, host=HOST)
    )
    fresh = with_headers(signed_sms_bodies(len(offsets), f"o{tag}", rng))
    sms_open = asyncio.run(
        lib.open_loop(port, as_requests(fresh, "/hooks/twilio/sms"), offsets, host=HOST)
    )
    # Texts answered from the spool are stored behind it: wait for it, then count.
    spool_dir = Path(env["RR_VAR_DIR"]) / "spool"
    spooled_at_end = len(list(spool_dir.glob("*.sms")))
    waited = time.monotonic()
    while any(spool_dir.glob("*.sms")) and time.monotonic() - waited < 180:
        time.sleep(0.1)
    drained_s = time.monotonic() - waited
    stored = stored_messages(env, f"SMo{tag}")
    return {
        "floor_rps": floor_n / seconds,
        "ours_rps": ours_n / seconds,
        "floor_lat": floor_lat,
        "ours_lat": ours_lat,
        "errors": ours_err + floor_err,
        "hello_open": hello_open,
        "sms_open": sms_open,
        "open_sent": len(offsets),
        "open_stored": stored,
        "spooled_at_end": spooled_at_end,
        "spool_drained_s": drained_s,
    }


def count_in_database(env: dict[str, str], script: str, sid_prefix: str) -> int:
    """What ``script`` prints last, run by ``manage.py shell`` against the benchmark's
    database (the server's settings, not this process's). The script is a constant; it
    reads the SID prefix from RR_BENCH_SID_PREFIX, so no value is formatted into code."""
    result = subprocess.run(  # noqa: S603 - our interpreter and manage.py, a fixed script
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env={**env, "RR_BENCH_SID_PREFIX": sid_prefix},
        check=True,
        capture_output=True,
        text=True,
    )
    return int(result.stdout.strip().splitlines()[-1])


def stored_messages(env: dict[str, str], sid_prefix: str) -> int:
    """Inbound messages kept in the database, stored or accepted (RR_SMS_ACCEPT_FIRST:
    durable, for the worker to store), whose provider SID starts with ``sid_prefix``."""
    script = (
        "import os; from messaging.models import AcceptedMessage as A, InboundMessage as M; "
        "p = os.environ['RR_BENCH_SID_PREFIX']; "
        "print(M.objects.filter(provider_sid__startswith=p).count() "
        "+ A.objects.filter(provider_sid__startswith=p).count())"
    )
    return count_in_database(env, script, sid_prefix)


def _intake_result(
    m: dict[str, Any],
    *,
    name: str,
    db: str,
    rate: int,
    threads: int,
    seconds: float,
    open_seconds: float,
) -> dict[str, Any]:
    sms_open, hello_open = m["sms_open"], m["hello_open"]
    open_p99 = percentile(sms_open.latencies, 99)
    open_max = max(sms_open.latencies, default=float("nan"))
    rps_target = 500 if db == "postgresql" else 300
    ratio = round(m["ours_rps"] / m["floor_rps"], 3)
    return {
        "id": "B1",
        "name": name,
        "database": db,
        "floor": "a hello-world view (/healthz) on the same server and settings",
        "ratio": ratio,
        "figures": {
            "webhook_rps": round(m["ours_rps"], 1),
            "hello_rps": round(m["floor_rps"], 1),
            "webhook_closed_p50_ms": ms(percentile(m["ours_lat"], 50)),
            "webhook_closed_p99_ms": ms(percentile(m["ours_lat"], 99)),
            "hello_closed_p99_ms": ms(percentile(m["floor_lat"], 99)),
            "closed_loop_errors": m["errors"],
            "open_loop_rate": rate,
            "webhook_open_p50_ms": ms(percentile(sms_open.latencies, 50)),
            "webhook_open_p99_ms": ms(open_p99),
            "webhook_open_max_ms": ms(open_max),
            "webhook_open_non_2xx": sms_open.non_2xx,
            "webhook_open_unanswered": sms_open.failures,
            "open_loop_stored": f"{m['open_stored']}/{m['open_sent']}",
            "spooled_when_the_open_loop_ended": m["spooled_at_end"],
            "spool_drained_after_s": round(m["spool_drained_s"], 1),
            "hello_open_p99_ms": ms(percentile(hello_open.latencies, 99)),
            "open_p99_over_hello_p99": round(open_p99 / percentile(hello_open.latencies, 99), 2),
            "generator_worst_lag_ms": ms(max(sms_open.worst_lag, hello_open.worst_lag)),
        },
        "targets": targets(
            Target("webhook/hello throughput ratio", ratio, ">=", 0.5),
            Target(
                f"webhook rps on {db}"
                + ("" if db == "postgresql" else " (anchors; the issue sets 500 for PG)"),
                round(m["ours_rps"], 1),
                ">=",
                rps_target,
            ),
            Target(f"open-loop p99 ms at {rate}/s", ms(open_p99), "<", 50),
            Target(f"non-2xx at {rate}/s", sms_open.non_2xx, "==", 0),
            Target("open-loop texts stored", m["open_stored"], "==", m["open_sent"]),
        ),
        "note": (
            f"closed loop: {threads} client threads, {seconds:.0f} s each; open loop: "
            f"{rate}/s for {open_seconds:.0f} s, latency from the scheduled send; the load "
            "generator runs on the same 2 cores"
        ),
    }


def bench_intake(quick: bool) -> list[dict[str, Any]]:
    """B1. Closed loop (16 threads) for throughput; open loop at a fixed 300/s for
    latency, with the hello view's latency at the same rate. First one uvicorn process
    (as `make run`); then, on PostgreSQL with Redis, the production profile
    (``core.serve``, a web process per core)."""
    seconds = 3.0 if quick else 15.0
    open_seconds = 4.0 if quick else 15.0
    rate = 300
    threads = 16
    results: list[dict[str, Any]] = []

    def measure(port: int, tag: str, headers: dict[str, str], name: str) -> None:
        m = _measure_intake(
            port,
            env,
            seconds=seconds,
            open_seconds=open_seconds,
            rate=rate,
            threads=threads,
            tag=tag,
            headers=headers,
        )
        results.append(
            _intake_result(
                m,
                name=name,
                db=db,
                rate=rate,
                threads=threads,
                seconds=seconds,
                open_seconds=open_seconds,
            )
        )

    with tempfile.TemporaryDirectory() as tmp, fresh_database(tmp) as database_url:
        env = bench_env(database_url, tmp)
        migrate(env)
        db = backend(database_url)
        with asgi_server(env) as port:
            measure(port, "1", {}, "intake: signed SMS webhook through uvicorn (1 process)")
        if db == "postgresql" and env.get("REDIS_URL"):
            web = os.cpu_count() or 2
            with production_profile(env, web) as port:
                # Production settings redirect plain HTTP; the load balancer says HTTPS.
                measure(
                    port,
                    "p",
                    {"X-Forwarded-Proto": "https"},
                    f"intake: the production profile (core.serve, {web} web processes)",
                )
    return results


# B1, voice


VOICE_PATH = "/hooks/twilio/voice"


def signed_voice(url: str, params: dict[str, str]) -> tuple[str, bytes, dict[str, str]]:
    """A voice webhook to ``url`` (an absolute URL from our TwiML, or a path), signed as
    Twilio signs it: the full URL, query included. Its path, body and headers."""
    from twilio.request_validator import RequestValidator

    parts = urllib.parse.urlsplit(url)
    if parts.netloc and f"{parts.scheme}://{parts.netloc}" != PUBLIC_URL:
        raise lib.SessionBroken(f"TwiML pointed outside the hotline: {url}")
    path = parts.path + ("?" + parts.query if parts.query else "")
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC_URL + path, params)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signature,
        "Host": HOST,
    }
    return path, urllib.parse.urlencode(params).encode(), headers


def _twiml_attribute(body: bytes, verb: str, attribute: str) -> str:
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(body)  # noqa: S314  # nosec B314 - our own server's TwiML, on loopback
    except ET.ParseError as exc:
        raise lib.SessionBroken(f"not TwiML: {body[:80]!r}") from exc
    found = root.find(verb)
    if found is None or not found.get(attribute):
        raise lib.SessionBroken(f"no <{verb} {attribute}> in {body[:200]!r}")
    return str(found.get(attribute))


def hotline_call(i: int, prefix: str, headers: dict[str, str] | None = None) -> lib.Session:
    """Call i to the hotline with nobody on shift, as a raid-day overflow goes: the
    language menu, a key press, the message recorded (its action and its status
    callback), the hang-up. Each step follows the URL the TwiML before it named.
    ``headers`` go with every request (the production profile's X-Forwarded-Proto)."""
    base = {
        "CallSid": f"CA{prefix}{i:08d}",
        "AccountSid": "ACbench",
        "From": f"+1510666{i % 10000:04d}",
        "To": "+15105550000",
        "Direction": "inbound",
        "CallStatus": "ringing",
    }
    recording = {
        "RecordingSid": f"RE{prefix}{i:08d}",
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/ACbench/Recordings/RE{i}",
        "RecordingDuration": "20",
    }

    async def call(exchange: lib.Exchange) -> None:
        async def post(url: str, expect: int, **more: str) -> bytes:
            path, body, signed = signed_voice(url, {**base, **more})
            status, answer = await exchange("POST", path, body, {**signed, **(headers or {})})
            if status != expect:
                raise lib.SessionBroken(f"{path}: {status} {answer[:200]!r}")
            return answer

        menu = await post(VOICE_PATH, 200)
        message = await post(
            _twiml_attribute(menu, "Gather", "action"), 200, CallStatus="in-progress", Digits="1"
        )
        await post(_twiml_attribute(message, "Record", "action"), 200, Digits="#", **recording)
        callback = _twiml_attribute(message, "Record", "recordingStatusCallback")
        await post(callback, 204, RecordingStatus="completed", **recording)
        await post(f"{VOICE_PATH}/status", 204, CallStatus="completed", CallDuration="45")

    return call


def hello_session(steps: int = 5, headers: dict[str, str] | None = None) -> lib.Session:
    """The floor: as many requests to the hello view, one after another."""

    async def session(exchange: lib.Exchange) -> None:
        for _ in range(steps):
            status, _body = await exchange(
                "GET", "/healthz", b"", {"Host": HOST, **(headers or {})}
            )
            if status != 200:
                raise lib.SessionBroken(f"hello answered {status}")

    return session


def voicemails_stored(env: dict[str, str], sid_prefix: str) -> int:
    """Calls whose SID starts with ``sid_prefix`` that ended as a voicemail with its
    report to call back."""
    script = (
        "import os; from calls.models import Call as C; "
        "print(C.objects.filter(provider_sid__startswith=os.environ['RR_BENCH_SID_PREFIX'], "
        "state='ended', outcome='voicemail', report__isnull=False, "
        "recording_sid__gt='').count())"
    )
    return count_in_database(env, script, sid_prefix)


def bench_voice(quick: bool) -> list[dict[str, Any]]:
    """B1, voice: calls to the hotline with nobody on shift, five signed webhooks each.
    Closed loop (16 callers at once) for throughput against the same number of hello
    requests per session; then open loop at 10 calls a second (a raid day's "hundreds
    of calls in minutes" is under that) for each webhook's latency, and every call
    counted as a voicemail with its report. First one uvicorn process (as `make run`);
    then, on PostgreSQL with Redis, the production profile, as B1's texts."""
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, fresh_database(tmp) as database_url:
        env = bench_env(database_url, tmp)
        migrate(env)
        db = backend(database_url)
        with asgi_server(env) as port:
            results.append(
                _measure_voice(port, env, db, quick=quick, tag="1", headers={}, name="1 process")
            )
        if db == "postgresql" and env.get("REDIS_URL"):
            web = os.cpu_count() or 2
            with production_profile(env, web) as port:
                results.append(
                    _measure_voice(
                        port,
                        env,
                        db,
                        quick=quick,
                        tag="p",
                        # Production settings redirect plain HTTP; the load balancer says HTTPS.
                        headers={"X-Forwarded-Proto": "https"},
                        name=f"the production profile ({web} web processes)",
                    )
                )
    return results


def _measure_voice(
    port: int,
    env: dict[str, str],
    db: str,
    *,
    quick: bool,
    tag: str,
    headers: dict[str, str],
    name: str,
) -> dict[str, Any]:
    seconds = 3.0 if quick else 8.0
    open_seconds = 4.0 if quick else 12.0
    rate = 10
    callers = 16

    async def measure() -> dict[str, lib.SessionResult]:
        offsets = lib.schedule(rate, open_seconds)
        warm = [hotline_call(i, f"w{tag}", headers) for i in range(10)]
        await lib.open_loop_sessions(port, warm, [0.0] * len(warm))
        return {
            "hello_closed": await lib.closed_loop_sessions(
                port,
                lambda _i: hello_session(headers=headers),
                concurrency=callers,
                seconds=seconds,
            ),
            "calls_closed": await lib.closed_loop_sessions(
                port,
                lambda i: hotline_call(i, f"c{tag}", headers),
                concurrency=callers,
                seconds=seconds,
            ),
            "hello_open": await lib.open_loop_sessions(
                port, [hello_session(headers=headers)], offsets
            ),
            "calls_open": await lib.open_loop_sessions(
                port, [hotline_call(i, f"o{tag}", headers) for i in range(len(offsets))], offsets
            ),
        }

    m = asyncio.run(measure())
    stored = voicemails_stored(env, f"CAo{tag}")
    hello_closed, calls_closed = m["hello_closed"], m["calls_closed"]
    hello_open, calls_open = m["hello_open"], m["calls_open"]
    calls_per_s = calls_closed.completed / seconds
    ratio = round(calls_closed.completed / max(1, hello_closed.completed), 3)
    started = len(lib.schedule(rate, open_seconds))
    p99 = percentile(calls_open.request_latencies, 99)
    worst = max(calls_open.request_latencies, default=float("nan"))
    return {
        "id": "B1",
        "name": f"intake: calls to the hotline, nobody on shift (voicemail), {name}",
        "database": db,
        "floor": "the same number of hello-world requests (/healthz) per session, same server",
        "ratio": ratio,
        "figures": {
            "calls_per_s_closed": round(calls_per_s, 1),
            "webhooks_per_s_closed": round(len(calls_closed.request_latencies) / seconds, 1),
            "hello_sessions_per_s_closed": round(hello_closed.completed / seconds, 1),
            "calls_failed_closed": calls_closed.failures,
            "open_loop_calls_per_s": rate,
            "webhook_open_p50_ms": ms(percentile(calls_open.request_latencies, 50)),
            "webhook_open_p99_ms": ms(p99),
            "webhook_open_max_ms": ms(worst),
            "call_open_p99_ms": ms(percentile(calls_open.session_latencies, 99)),
            "hello_open_p99_ms": ms(percentile(hello_open.request_latencies, 99)),
            "calls_failed_open": calls_open.failures,
            "voicemails_stored": f"{stored}/{started}",
            "generator_worst_lag_ms": ms(max(calls_open.worst_lag, hello_open.worst_lag)),
        },
        "targets": targets(
            Target(f"webhook p99 ms at {rate} calls/s (anchors, as B1)", ms(p99), "<", 50),
            Target("webhook max ms (anchors: under 1 s)", ms(worst), "<", 1000),
            Target("calls cut short or non-2xx", calls_open.failures, "==", 0),
            Target("calls stored as voicemails with a report", stored, "==", started),
        ),
        "note": (
            f"each call: menu, key press, record action, recording callback, hang-up; "
            f"closed loop: {callers} callers for {seconds:.0f} s; open loop: {rate} calls/s "
            f"for {open_seconds:.0f} s; ratio = calls / hello sessions of 5 requests"
        ),
    }


# B2


CITY = (37.70, -122.50, 37.85, -122.20)  # south, west, north, east
COORDINATE_FORMATS = (
    "ICE agents here {lat:.5f}, {lng:.5f}",
    "La migra está aquí https://maps.google.com/?q={lat:.6f},{lng:.6f}",
    "vans outside geo:{lat:.5f},{lng:.5f} two agents",
    "Agentes en la esquina, ubicación: {lat:.5f},{lng:.5f}",
)


def surge_scenario(total: int, burst: int, events: int, rng: random.Random) -> list[Any]:
    """Reports about ``events`` places at least 1.5 km apart, each report within 350 m
    of its event (normal, sigma 120 m), so a report can be up to 700 m from the first one
    of its event (beyond the 500 m rule): grouping is not trivially perfect. The burst
    in the middle is mostly about three events (a raid), the rest spread over all."""
    from core.geo import Point, distance_meters

    south, west, north, east = CITY
    centres: list[Any] = []
    while len(centres) < events:
        point = Point(rng.uniform(south, north), rng.uniform(west, east))
        if all(distance_meters(point, c) >= 1500 for c in centres):
            centres.append(point)
    weights = [rng.uniform(0.3, 3.0) for _ in centres]
    raid = [0, 1, 2]
    before = (total - burst) // 2
    reports = []
    for i in range(total):
        in_burst = before <= i < before + burst
        if in_burst and rng.random() < 0.8:
            event = rng.choice(raid)
        else:
            event = rng.choices(range(events), weights=weights)[0]
        centre = centres[event]
        while True:
            dlat, dlng = rng.gauss(0, 120) / 111_000, rng.gauss(0, 120) / 88_000
            point = Point(centre.lat + dlat, centre.lng + dlng)
            if distance_meters(point, centre) <= 350:
                break
        reports.append((event, point))
    return reports


def replay(
    *, reports: list[Any], located: bool, offsets: list[float], quick: bool, tag: str
) -> dict[str, Any]:
    """One replay on a fresh database: the webhook under uvicorn, one `run_worker`,
    every report POSTed at its time; then wait for the backlog to drain."""
    rng = random.Random(9)
    sids = [f"SM{tag}{i:08d}" for i in range(len(reports))]
    requests = []
    for i, (_event, point) in enumerate(reports):
        text = (
            rng.choice(COORDINATE_FORMATS).format(lat=point.lat, lng=point.lng)
            if located
            else rng.choice(SMS_TEXTS)
        )
        body, headers = signed_sms(sms_params(sids[i], f"+1510666{i:04d}", text))
        requests.append(("POST", "/hooks/twilio/sms", body, headers))
    with tempfile.TemporaryDirectory() as tmp, fresh_database(tmp) as database_url:
        env = bench_env(database_url, tmp)
        migrate(env)
        with asgi_server(env) as port, worker_process(env):
            time.sleep(2.0)  # the worker loads the language models
            sent = asyncio.run(lib.open_loop(port, requests, offsets, host=HOST))
            last_post = time.time()
            drain_deadline = last_post + (10 if quick else 30)
            rows: list[tuple[str, Any, Any]] = []
            # Done when no accepted text waits to be stored and every stored message is
            # processed (a POST that failed stored none).
            while time.time() < drain_deadline:
                waiting, rows = _processed(database_url)
                if not waiting and all(done is not None for _, done, _ in rows):
                    break
                time.sleep(0.2)
    by_sid = {sid: (done, incident) for sid, done, incident in rows}
    latencies = []
    predicted = []
    unprocessed = 0
    attached = 0
    for i, sid in enumerate(sids):
        done, incident = by_sid.get(sid, (None, None))
        if done is None:
            unprocessed += 1
            latencies.append(float("inf"))
        else:
            latencies.append(done.timestamp() - sent.sent_at[i])
        attached += incident is not None
        predicted.append(incident)
    finished = [d.timestamp() for d, _ in by_sid.values() if d is not None]
    burst_end = sent.sent_at[-1]
    return {
        "database": backend(database_url),
        "latencies": latencies,
        "predicted": predicted,
        "unprocessed": unprocessed,
        "attached": attached,
        "post_non_2xx": sent.non_2xx,
        "post_statuses": {**{str(k): v for k, v in sent.statuses.items()}, "none": sent.failures},
        "post_p99": percentile(sent.latencies, 99),
        "drain_after_last_post": (max(finished) - burst_end) if finished else float("inf"),
    }


def _processed(database_url: str) -> tuple[int, list[tuple[str, Any, Any]]]:
    """How many accepted texts still wait to be stored (accept first), and (MessageSid,
    processed_at, incident id) of every stored message; read with the database's own
    client so this process needs no Django of its own."""
    waiting = "SELECT count(*) FROM messaging_acceptedmessage"
    query = (
        "SELECT m.provider_sid, m.processed_at, r.incident_id FROM messaging_inboundmessage m "
        "LEFT JOIN intake_report r ON r.inbound_message_id = m.id"
    )
    if database_url.startswith("postgres"):
        import psycopg

        with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) as conn:
            count = conn.execute(waiting).fetchone()
            return int(count[0] if count else 0), list(conn.execute(query).fetchall())
    import sqlite3
    from datetime import datetime

    with contextlib.closing(
        sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=30)
    ) as conn:
        (count,) = conn.execute(waiting).fetchone()
        return int(count), [
            (sid, datetime.fromisoformat(done + "+00:00") if done else None, incident)
            for sid, done, incident in conn.execute(query).fetchall()
        ]


def bench_surge(quick: bool) -> list[dict[str, Any]]:
    """B2. 2,000 reports about 30 events, 500 of them in 10 s, replayed in about a
    minute (quick: 370 reports, 250 in 5 s: the same rates), each POSTed at its time
    (open loop)."""
    rng = random.Random(21)
    full = [(750, 25.0), (500, 10.0), (750, 25.0)]
    plan = [(60, 2.0), (250, 5.0), (60, 2.0)] if quick else full
    total = sum(n for n, _ in plan)
    burst = plan[1][0]
    reports = surge_scenario(total, burst, 30, rng)
    offsets = lib.phases(plan)
    ours = replay(reports=reports, located=True, offsets=offsets, quick=quick, tag="s")
    floor = replay(reports=reports, located=False, offsets=offsets, quick=quick, tag="f")
    # Grouping is scored on the reports that were stored and attached; those that were
    # not are counted apart (as lost to the surge, not as grouping errors).
    kept = [i for i, incident in enumerate(ours["predicted"]) if incident is not None]
    scores = lib.pairwise_f1([reports[i][0] for i in kept], [ours["predicted"][i] for i in kept])
    p99 = percentile(ours["latencies"], 99)
    floor_p99 = percentile(floor["latencies"], 99)
    return [
        {
            "id": "B2",
            "name": f"surge: {total:,} reports about 30 events, {burst} within "
            f"{plan[1][1]:g} s"
            + (" (quick: the issue's is 2,000 and 500 in 10 s)" if quick else ""),
            "database": ours["database"],
            "floor": "the same replay with reports that name no place (stored, no matching)",
            "ratio": round(p99 / floor_p99, 2),
            "figures": {
                "post_to_attached_p50_ms": ms(percentile(ours["latencies"], 50)),
                "post_to_attached_p99_ms": ms(p99),
                "floor_post_to_report_p99_ms": ms(floor_p99),
                "reports_attached": f"{ours['attached']}/{total}",
                "not_processed_in_time": ours["unprocessed"] + floor["unprocessed"],
                "backlog_drained_s_after_last_post": round(ours["drain_after_last_post"], 2),
                "incidents": len({p for p in ours["predicted"] if p is not None}),
                "pairwise_precision": round(scores.precision, 3),
                "pairwise_recall": round(scores.recall, 3),
                "pairwise_f1": round(scores.f1, 3),
                "webhook_p99_ms": ms(ours["post_p99"]),
                "webhook_non_2xx": ours["post_non_2xx"] + floor["post_non_2xx"],
                "webhook_answers": ours["post_statuses"],
                "floor_webhook_answers": floor["post_statuses"],
            },
            "targets": targets(
                Target("POST to incident attached p99 ms", ms(p99), "<", 2000),
                Target("grouping pairwise F1", round(scores.f1, 3), ">=", 0.9),
                Target("p99 over the floor's (anchors)", round(p99 / floor_p99, 2), "<=", 1.5),
                Target(
                    "backlog empty s after the last POST (anchors)",
                    round(ours["drain_after_last_post"], 2),
                    "<",
                    5,
                ),
            ),
            "note": (
                "one uvicorn process and one run_worker; latency from the scheduled POST to "
                "the message's processed_at, written in the transaction that attaches the "
                "report"
            ),
        }
    ]


# B3


def _random_incidents(count: int, rng: random.Random, now: Any) -> list[Any]:
    from core.geo import Point
    from incidents.models import Incident

    rows = []
    # A metropolitan area about 60 km across, activity over the last 6 hours.
    for _ in range(count):
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
    return rows


def naive_find(point: Any, observed_at: Any) -> Any:
    """The matching rule without the index: every open incident read and checked."""
    from core.geo import distance_meters
    from incidents import matching
    from incidents.models import Incident, IncidentStatus

    candidates = Incident.objects.exclude(status=IncidentStatus.CLOSED).only(
        "id", "uuid", "status", "lat", "lng", "first_seen", "last_seen"
    )
    admitted = [i for i in candidates if matching.is_within(i, point, observed_at)]
    if not admitted:
        return None
    return min(admitted, key=lambda i: (distance_meters(i.point, point), -i.last_seen.timestamp()))


def bench_matching(quick: bool) -> list[dict[str, Any]]:
    """B3, one report: the incident for one report among 10,000 open incidents."""
    with tempfile.TemporaryDirectory() as tmp, fresh_database(tmp) as database_url:
        setup_django(database_url, tmp)
        from django.utils import timezone

        from core.geo import Point
        from incidents import matching
        from incidents.models import Incident

        rng = random.Random(7)
        now = timezone.now()
        Incident.objects.bulk_create(_random_incidents(10_000, rng, now), batch_size=1000)
        queries = [
            Point(37.5 + rng.random() * 0.55, -122.5 + rng.random() * 0.7)
            for _ in range(300 if quick else 1000)
        ]
        for point in queries[:20]:  # warm up
            matching.find_incident(point, now)
        indexed_times = []
        for point in queries:
            started = time.perf_counter()
            matching.find_incident(point, now)
            indexed_times.append(time.perf_counter() - started)
        naive_times = []
        same = 0
        # The scan takes about a second a query: a sample is enough for its median.
        for point in queries[: 10 if quick else 25]:
            started = time.perf_counter()
            expected = naive_find(point, now)
            naive_times.append(time.perf_counter() - started)
            found = matching.find_incident(point, now)
            same += int((found.pk if found else None) == (expected.pk if expected else None))
        checked = len(naive_times)
    speedup = statistics.median(naive_times) / statistics.median(indexed_times)
    p99 = percentile(indexed_times, 99)
    return [
        {
            "id": "B3",
            "name": "matching: one report against 10,000 open incidents",
            "database": backend(database_url),
            "floor": "a scan of every open incident with the same rule (is_within)",
            "ratio": round(speedup, 1),
            "figures": {
                "indexed_p50_ms": ms(percentile(indexed_times, 50)),
                "indexed_p99_ms": ms(p99),
                "scan_p50_ms": ms(percentile(naive_times, 50)),
                "identical_results": f"{same}/{checked}",
            },
            "targets": targets(
                Target("one report p99 ms", ms(p99), "<", 2.0),
                Target("identical to the scan", same == checked, "==", True),
            ),
        }
    ]


def grouping_scenario(count: int, rng: random.Random, start: Any) -> list[tuple[Any, Any]]:
    """``count`` reports in time order over 6 hours across the metropolitan area, about
    one event per four reports, each report within 300 m and 20 minutes of its event."""
    from core.geo import Point

    events = [
        (
            Point(37.5 + rng.random() * 0.55, -122.5 + rng.random() * 0.7),
            start + timedelta(minutes=rng.uniform(0, 340)),
        )
        for _ in range(max(1, count // 4))
    ]
    reports = []
    for _ in range(count):
        centre, at = rng.choice(events)
        point = Point(
            centre.lat + rng.uniform(-300, 300) / 111_000,
            centre.lng + rng.uniform(-300, 300) / 88_000,
        )
        reports.append((point, at + timedelta(minutes=rng.uniform(0, 20))))
    reports.sort(key=lambda r: r[1])
    return reports


def _group(reports: list[tuple[Any, Any]], find: Any) -> tuple[list[int], float, float]:
    """Group reports one by one as intake does: join the incident ``find`` returns
    (widening its time span) or open one. The incident ids, the time spent in ``find``
    and the whole pass."""
    from incidents.models import Incident

    Incident.objects.all().delete()
    labels = []
    finding = 0.0
    started = time.perf_counter()
    for point, at in reports:
        t0 = time.perf_counter()
        found = find(point, at)
        finding += time.perf_counter() - t0
        if found is None:
            incident = Incident.objects.create(
                lat=point.lat, lng=point.lng, h3_cell=point.cell(), first_seen=at, last_seen=at
            )
        else:
            incident = found
            Incident.objects.filter(pk=found.pk).update(
                first_seen=min(found.first_seen, at), last_seen=max(found.last_seen, at)
            )
        labels.append(incident.pk)
    return labels, finding, time.perf_counter() - started


def bench_grouping(quick: bool) -> list[dict[str, Any]]:
    """B3, grouping: 2,000 reports (quick: 500) grouped incrementally through the H3
    index (matching.find_incident), against a naive pairwise pass that checks each
    report against every incident so far; both groupings must be identical."""
    count = 500 if quick else 2000
    with tempfile.TemporaryDirectory() as tmp, fresh_database(tmp) as database_url:
        setup_django(database_url, tmp)
        from django.utils import timezone

        from incidents import matching

        reports = grouping_scenario(count, random.Random(13), timezone.now() - timedelta(hours=6))
        ours, ours_find, ours_total = _group(reports, matching.find_incident)
        naive, naive_find_s, naive_total = _group(reports, naive_find)
    identical = lib.same_partition(ours, naive)
    speedup = naive_find_s / ours_find
    return [
        {
            "id": "B3",
            "name": f"grouping: {count:,} reports, incremental H3 against a pairwise pass"
            + (" (quick: the issue's figure is at 2,000)" if quick else ""),
            "database": backend(database_url),
            "floor": "the naive pairwise pass: each report against every incident so far",
            "ratio": round(speedup, 1),
            "figures": {
                "incremental_matching_s": round(ours_find, 3),
                "pairwise_matching_s": round(naive_find_s, 3),
                "incremental_pass_with_writes_s": round(ours_total, 2),
                "pairwise_pass_with_writes_s": round(naive_total, 2),
                "incidents": len(set(ours)),
                "identical_grouping": identical,
            },
            "targets": targets(
                Target("speed-up over the pairwise pass", round(speedup, 1), ">=", 50),
                Target("identical grouping", identical, "==", True),
            ),
            "note": "matching time only; the incident writes are the same in both passes",
        }
    ]


# B4


def bench_responders(quick: bool) -> list[dict[str, Any]]:
    """B4. Nearest available verifiers who speak Spanish among 10,000 responders,
    through the cell index, against a pure-Python loop over every responder (read in
    one query) on a tenth of the same queries."""
    with tempfile.TemporaryDirectory() as tmp, fresh_database(tmp) as database_url:
        setup_django(database_url, tmp)
        from core.geo import Point, distance_meters
        from dispatch.matching import COARSE_RESOLUTION, FINE_RESOLUTION, nearest_responders
        from dispatch.models import LANGUAGE_BITS, ROLE_BITS, Responder

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
        for point in queries[:20]:  # warm up
            nearest_responders(point, role="verifier", language="es", limit=5)
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
        sample = max(1, len(queries) // 10)
        for point, expected in zip(queries[:sample], results[:sample], strict=True):
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
    speedup = statistics.median(loop_times) / statistics.median(times)
    p99 = percentile(times, 99)
    return [
        {
            "id": "B4",
            "name": "responders: 5 nearest available Spanish-speaking verifiers among 10,000",
            "database": backend(database_url),
            "floor": "a pure-Python loop over every responder, read in one query",
            "ratio": round(speedup, 1),
            "figures": {
                "indexed_p50_ms": ms(percentile(times, 50)),
                "indexed_p99_ms": ms(p99),
                "python_loop_p50_ms": ms(percentile(loop_times, 50)),
                "identical_results": f"{same}/{sample}",
            },
            "targets": targets(
                Target("p99 ms", ms(p99), "<", 5.0),
                Target("speed-up over the Python loop", round(speedup, 1), ">=", 10),
                Target("identical to the loop", same == sample, "==", True),
            ),
        }
    ]


# B5 and B8


def _subscribers(count: int, centre: Any) -> None:
    """``count`` active subscribers within 4 km of ``centre``, three cells each, written
    in bulk (each contact's phone is still encrypted under its own row's context, which
    is its uuid, set before the insert). Setup, not measured."""
    import h3
    from django.db import transaction

    from alerts.models import Subscriber, SubscriberCell, SubscriberStatus
    from core.geo import Point
    from messaging.models import Contact

    rng = random.Random(5)
    with transaction.atomic():
        Contact.objects.bulk_create(
            (Contact(phone=f"+1415{i:07d}", phone_hash=f"c{i:063d}") for i in range(count)),
            batch_size=5000,
        )
        # SQLite's bulk insert returns no ids: read them back, in the order written.
        contacts = list(
            Contact.objects.filter(phone_hash__startswith="c")
            .only("pk", "phone_hash")
            .order_by("phone_hash")
        )
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


def settle_database() -> None:
    """Leave a bulk setup as a running deployment would have it before it is measured:
    statistics gathered (autovacuum analyses a table soon after a large load) and the
    setup's writes flushed to the data files (a checkpoint). Otherwise what is measured
    first pays for writing out the setup's dirty pages."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE")
            cursor.execute("CHECKPOINT")
        else:
            cursor.execute("ANALYZE")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _verified_alert(radius_m: int) -> Any:
    """A verified incident's alert, approved, with the built-in texts filled in."""
    from django.utils import timezone

    from accounts.models import Role, User
    from alerts.actions import suggested_bodies
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
        location_text="International Blvd & 35th Ave",
        first_seen=now,
        last_seen=now,
    )
    return Alert.objects.create(
        incident=incident,
        kind=AlertKind.ALERT,
        status=AlertStatus.SENDING,
        radius_m=radius_m,
        bodies=suggested_bodies(incident, AlertKind.ALERT),
        composed_by=composer,
        approved_by=composer,
        valid_until=now + timedelta(minutes=60),
    )


# Senders from the performance anchors (section 1.1): messages (segments) a second.
REFERENCE_SENDERS = (
    ("one US long code", 1.0),
    ("toll-free, verified", 3.0),
    ("10DLC, vetting 75+", 75.0),
    ("short code", 100.0),
)


def carrier_arithmetic(alert: Any, recipients: int, db: str) -> dict[str, Any]:
    """B8: how long this alert takes to drain on the configured sender and on the
    reference senders, from the product's own estimate (``alerts.actions.drain_estimate``,
    the one the compose and approval pages show: segments over RR_SMS_RATE_PER_SECOND),
    against the validity period. A report: the warning is what it is for."""
    from django.conf import settings
    from django.test import override_settings

    from alerts import actions
    from core.sms import segments

    configured = settings.RR_SMS_RATE_PER_SECOND
    most_segments = max(segments(body).segments for body in alert.bodies.values())
    estimate = actions.drain_estimate(recipients, most_segments)
    references = {}
    for label, rate in REFERENCE_SENDERS:
        with override_settings(RR_SMS_RATE_PER_SECOND=rate):
            drain = actions.drain_estimate(recipients, most_segments)
            references[f"{label} ({rate:g}/s)"] = round(drain.seconds / 60, 1)
    warning = (
        f"WARNING: {recipients:,} recipients take {estimate.seconds / 60:,.0f} min at "
        f"{configured:g}/s, past the {estimate.validity_minutes} min validity period: "
        f"about {estimate.too_late:,} would expire unsent (the compose and approval pages "
        "say so too)"
        if estimate.too_slow
        else ""
    )
    return {
        "id": "B8",
        "name": f"carrier arithmetic: an alert to {recipients:,} recipients",
        "database": db,
        "floor": "the validity period (RR_ALERT_VALIDITY_MINUTES); ratio = drain / validity",
        "ratio": round(estimate.seconds / estimate.validity_seconds, 2),
        "figures": {
            "configured_rate_per_second": configured,
            "segments_per_message": most_segments,
            "drain_minutes_on_configured_sender": round(estimate.seconds / 60, 1),
            "validity_minutes": estimate.validity_minutes,
            "in_time_on_configured_sender": estimate.in_time,
            "drain_minutes_by_sender": references,
        },
        "targets": [],
        "note": warning
        or (
            f"{recipients:,} recipients drain in {estimate.seconds / 60:.1f} min at "
            f"{configured:g}/s, within the validity period"
        ),
    }


def bench_fanout(quick: bool) -> list[dict[str, Any]]:  # noqa: PLR0915 - one benchmark, read top to bottom
    """B5. Writing one outbox row per recipient of an alert to 100,000 subscribers,
    nearest first, against: the same rows through a raw executemany into a scratch
    table (the floor), one ORM INSERT per row, and one queued task per recipient (the
    anti-peer); the last two measured on a sample and extrapolated. Then B8 on the
    same alert."""
    count = 10_000 if quick else 100_000
    sample = 2000
    with tempfile.TemporaryDirectory() as tmp, fresh_database(tmp) as database_url:
        setup_django(database_url, tmp)
        from django.db import connection, transaction

        from alerts import actions
        from core.geo import Point
        from messaging.models import OutboxMessage
        from messaging.tasks import send_queued_messages

        _subscribers(count, Point(37.7766, -122.2265))
        alert = _verified_alert(radius_m=10_000)
        settle_database()
        started = time.perf_counter()
        total = actions.fan_out(alert.pk)
        fan_out_seconds = time.perf_counter() - started
        # Run again (a worker restarted mid-fan-out): nothing new is written.
        started = time.perf_counter()
        again = actions.fan_out(alert.pk)
        rerun_seconds = time.perf_counter() - started
        alert.refresh_from_db()
        carrier = carrier_arithmetic(alert, total, backend(database_url))
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
    db = backend(database_url)
    limit = 5.0 if db == "sqlite" else 2.0
    ratio = raw_seconds / fan_out_seconds
    fanout = {
        "id": "B5",
        "name": f"fan-out: one outbox row per recipient, {count:,} subscribers"
        + (" (quick: the issue's figure is at 100,000)" if quick else ""),
        "database": db,
        "floor": "a raw executemany of the same rows into a scratch table",
        "ratio": round(ratio, 2),
        "figures": {
            "rows": total,
            "rows_added_by_a_rerun": again - total,
            "fan_out_seconds": round(fan_out_seconds, 2),
            "rows_per_second": round(total / fan_out_seconds),
            "rerun_seconds": round(rerun_seconds, 2),
            "raw_executemany_seconds": round(raw_seconds, 2),
            "one_insert_per_row_seconds": round(per_insert * total, 1),
            "one_task_per_recipient_seconds": round(per_task * total, 1),
            "faster_than_a_task_per_recipient": round(per_task * total / fan_out_seconds, 1),
        },
        "targets": targets(
            Target(f"fan-out s on {db}", round(fan_out_seconds, 2), "<", limit),
            Target("raw executemany / fan-out", round(ratio, 2), ">=", 0.2),
            Target("rows added by a rerun", again - total, "==", 0),
        ),
        "note": "audience selection, nearest-first sort, bulk insert and commit, all"
        " included; measured after the setup is analysed and checkpointed",
    }
    return [fanout, carrier]


# B6


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
    # A run starts on an empty outbox: what an earlier run was refused (the unpaced
    # run's 429s, queued again for later) would be sent in this one and counted there.
    OutboxMessage.objects.filter(status="queued").update(status="expired")
    queued_from = timezone.now()
    settings.RR_SMS_RATE_PER_SECOND = rate
    ranks = _queue_ranked(count, prefix, rng)
    starts: list[tuple[float, int]] = []  # appended from the sending threads
    send = outbox._send

    def timed_send(message: Any, provider_name: str) -> Any:
        starts.append((time.monotonic(), ranks[message.contact.phone]))
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
    starts.sort()
    sends = [at for at, _ in starts]
    rows = OutboxMessage.objects.filter(created_at__gte=queued_from)
    return {
        "achieved": rows.filter(status="sent").count() / elapsed,
        "steady": (len(sends) - 1) / (sends[-1] - sends[0]) if len(sends) > 1 else 0.0,
        "busiest_second": _busiest_second(sends),
        "requests": len(sends),
        "refused_429": rows.filter(error_code="20429").count(),
        "order": lib.nearest_first([rank for _, rank in starts]),
        "cpu_seconds": time.process_time() - cpu,
    }


def bench_pacing(quick: bool) -> list[dict[str, Any]]:
    """B6. The sender against the Twilio stand-in in its own process (50 ms a request, 429
    above 100 at once, as Twilio's API does): at the configured rate it should keep close
    to it, never start more than the rate (and one) in any second, get no 429, and send
    nearest first. Twilio queues what exceeds a number's rate (until it expires); a
    provider that refuses it instead shows what an unpaced sender, told it may go 20
    times faster, runs into. Last, the most this sender can do on this machine."""
    rate = 100 if quick else 200
    seconds = 4 if quick else 15
    count = int(rate * seconds)
    with tempfile.TemporaryDirectory() as tmp, fresh_database(tmp) as database_url:
        os.environ["RR_SMS_FROM"] = "+15105550000"
        os.environ["RR_SMS_MAX_IN_FLIGHT"] = "90"
        setup_django(database_url, tmp)
        rng = random.Random(3)
        with standin_process(latency=0.05, max_concurrent=100, rate=None) as url:
            paced = _drain_through(url, rate, count, "415", rng)
        with standin_process(latency=0.05, max_concurrent=100, rate=rate) as url:
            unpaced = _drain_through(url, rate * 20, count, "416", rng)
        with standin_process(latency=0.05, max_concurrent=100, rate=None) as url:
            flat_out = _drain_through(url, 100_000, count, "417", rng)
    order = paced["order"]
    achieved = paced["achieved"] / rate
    return [
        {
            "id": "B6",
            "name": f"pacing: {count:,} messages through a sender allowed {rate}/s",
            "database": backend(database_url),
            "floor": "the configured rate (the ideal sender)",
            "ratio": round(achieved, 3),
            "figures": {
                "configured_per_second": rate,
                "achieved_per_second": round(paced["achieved"], 1),
                "steady_state_ratio": round(paced["steady"] / rate, 3),
                "busiest_second": paced["busiest_second"],
                "paced_429s": paced["refused_429"],
                "first_tenth_nearer_than_median": order.first_tenth_below_median,
                "order_spearman": round(order.spearman, 4),
                "order_max_displacement": order.max_displacement,
                "sender_cpu_per_message_ms": round(paced["cpu_seconds"] / count * 1000, 2),
                "unpaced_429s": unpaced["refused_429"],
                "most_this_sender_can_do_per_second": round(flat_out["steady"]),
            },
            "targets": targets(
                Target("achieved / configured rate", round(achieved, 3), ">=", 0.95),
                Target("429s when paced", paced["refused_429"], "==", 0),
                Target(
                    "nearest first (first tenth all nearer than the median)",
                    order.first_tenth_below_median,
                    "==",
                    True,
                ),
            ),
            "note": "stand-in in its own process: 50 ms a request, 429 above 100 at once; "
            "achieved counts from the first claim to the last answer",
        }
    ]


# B7


async def _sse_client(
    port: int, path: str, cookie: str, received: dict[str, float], connected: asyncio.Event
) -> None:
    """One dispatcher's console stream: records when each event id arrives."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nCookie: {cookie}\r\n"
            "Accept: text/event-stream\r\nAccept-Language: en\r\n\r\n"
        ).encode()
    )
    status = (await reader.readline()).split()
    if len(status) < 2 or status[1] != b"200":
        raise RuntimeError(f"the event stream answered {status!r}")
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    parser = lib.SSEParser()
    try:
        while True:
            chunk = await lib.read_chunk(reader)
            if not chunk:
                return
            connected.set()
            now = time.perf_counter()
            for event in parser.feed(chunk.decode()):
                if event.event == "reload":
                    received["reload"] = now
                elif event.id is not None:
                    received.setdefault(event.id, now)
    finally:
        writer.close()


async def _floor_client(port: int, received: dict[str, float], connected: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"SUB\n")
    await writer.drain()
    try:
        while line := await reader.readline():
            if line == b"READY\n":
                connected.set()
                continue
            received.setdefault(line.decode().strip(), time.perf_counter())
    finally:
        writer.close()


async def _floor_server(ready: Any) -> None:
    """The bare fan-out: a line from a publisher written to every subscriber."""
    subscribers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await reader.readline()
        if first == b"SUB\n":
            subscribers.append(writer)
            writer.write(b"READY\n")
            await writer.drain()
            return
        line = first
        while line:
            for subscriber in subscribers:
                subscriber.write(line)
            await asyncio.gather(*(s.drain() for s in subscribers))
            writer.write(b"OK\n")
            await writer.drain()
            line = await reader.readline()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    ready(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


def floor_server_main() -> None:
    asyncio.run(_floor_server(lambda port: print(port, flush=True)))


async def _fan_out_to(
    clients: int,
    connect: Any,
    publish: Any,
    updates: int,
    interval: float,
) -> tuple[list[float], int, int]:
    """Connect ``clients``, wait until all are streaming, publish ``updates`` (each
    returns {event id: time published}), then wait for the stragglers. Latencies of
    every (client, event), events lost, and the clients that failed."""
    received: list[dict[str, float]] = [{} for _ in range(clients)]
    flags = [asyncio.Event() for _ in range(clients)]
    refused: list[BaseException] = []

    async def client(i: int) -> None:
        try:
            await connect(received[i], flags[i])
        except Exception as exc:
            # A client that cannot stream (a redirect, a refusal) must not leave the run
            # waiting for it to connect.
            refused.append(exc)
            flags[i].set()
            raise

    tasks = [asyncio.create_task(client(i)) for i in range(clients)]
    await asyncio.wait_for(asyncio.gather(*(f.wait() for f in flags)), timeout=60)
    if refused:
        for task in tasks:
            task.cancel()
        raise RuntimeError(f"{len(refused)} of {clients} clients could not stream: {refused[0]}")
    published: dict[str, float] = {}
    for i in range(updates):
        published.update(await publish(i))
        await asyncio.sleep(interval)
    deadline = time.perf_counter() + 5
    while time.perf_counter() < deadline and not all(
        published.keys() <= got.keys() for got in received
    ):
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failed = sum(
        1
        for r in results
        if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)
    )
    latencies = []
    lost = 0
    for got in received:
        for event_id, at in published.items():
            if event_id in got:
                latencies.append(got[event_id] - at)
            else:
                lost += 1
        lost += "reload" in got
    return latencies, lost, failed


def bench_live(quick: bool) -> list[dict[str, Any]]:  # noqa: PLR0915 - one scenario
    """B7. 200 console streams open on the real SSE endpoint (one uvicorn process) while
    dispatchers change 50 incidents (quick: 20) through incidents.actions in this
    process; every client must receive every event. The floor: a bare asyncio server
    in its own process writing one line per update to the same 200 clients."""
    clients = 200
    updates = 20 if quick else 50
    interval = 0.2
    with tempfile.TemporaryDirectory() as tmp, fresh_database(tmp) as database_url:
        os.environ["RR_CONSOLE_STREAM_SECONDS"] = "600"  # no reconnect during the run
        setup_django(database_url, tmp)
        from django.conf import settings
        from django.test import Client
        from django.urls import reverse
        from django.utils import timezone

        from accounts import mfa
        from accounts.models import Role, User
        from incidents import actions
        from incidents.models import ConsoleEvent, Incident, Level

        user = User.objects.create_user(username="bench-dispatcher", role=Role.DISPATCHER)
        browser = Client()
        browser.force_login(user)
        # As after the second factor: a password-only session is sent to the MFA step.
        session = browser.session
        session[mfa.MFA_AT] = int(time.time())
        session.save()
        cookie = (
            f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
        now = timezone.now()
        incidents = Incident.objects.bulk_create(_random_incidents(updates, random.Random(17), now))
        path = reverse("incidents:events")
        env = {**os.environ}

        def change(i: int) -> dict[str, float]:
            last = ConsoleEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
            started = time.perf_counter()
            actions.change_level(
                actor=user,
                incident=incidents[i],
                level=Level.RED if incidents[i].level != Level.RED else Level.YELLOW,
                reason="bench",
            )
            ids = ConsoleEvent.objects.filter(id__gt=last).values_list("id", flat=True)
            return {str(event_id): started for event_id in ids}

        with asgi_server(env) as port:

            async def ours() -> tuple[list[float], int, int]:
                loop = asyncio.get_running_loop()

                async def publish(i: int) -> dict[str, float]:
                    return await loop.run_in_executor(None, change, i)

                return await _fan_out_to(
                    clients,
                    lambda got, flag: _sse_client(port, path, cookie, got, flag),
                    publish,
                    updates,
                    interval,
                )

            latencies, lost, failed = asyncio.run(ours())
    floor_process = subprocess.Popen(  # noqa: S603 - this script, loopback only
        [sys.executable, __file__, "--floor-server"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert floor_process.stdout is not None
        floor_port = int(floor_process.stdout.readline())

        async def floor() -> tuple[list[float], int, int]:
            reader, writer = await asyncio.open_connection("127.0.0.1", floor_port)

            async def publish(i: int) -> dict[str, float]:
                started = time.perf_counter()
                writer.write(f"{i}\n".encode())
                await reader.readline()
                return {str(i): started}

            try:
                return await _fan_out_to(
                    clients,
                    lambda got, flag: _floor_client(floor_port, got, flag),
                    publish,
                    updates,
                    interval,
                )
            finally:
                writer.close()

        floor_latencies, floor_lost, _ = asyncio.run(floor())
    finally:
        floor_process.kill()
        floor_process.wait(timeout=10)
    p99 = percentile(latencies, 99)
    floor_p99 = percentile(floor_latencies, 99)
    db = backend(database_url)
    return [
        {
            "id": "B7",
            "name": f"live console: {updates} incident updates to {clients} SSE clients",
            "database": db,
            "floor": "a bare asyncio server writing each update to the same clients",
            "ratio": round(p99 / floor_p99, 1),
            "figures": {
                "delivery_p50_ms": ms(percentile(latencies, 50)),
                "delivery_p99_ms": ms(p99),
                "delivery_max_ms": ms(max(latencies, default=float("nan"))),
                "floor_p99_ms": ms(floor_p99),
                "events_lost": lost,
                "floor_events_lost": floor_lost,
                "clients_failed": failed,
                "console_poll_seconds": settings.RR_CONSOLE_POLL_SECONDS,
            },
            "targets": targets(
                Target("delivery p99 ms", ms(p99), "<", 250),
                Target("events lost", lost + failed, "==", 0),
            ),
            "note": (
                "latency from just before the action's transaction to the event's arrival; "
                + (
                    "PostgreSQL NOTIFY wakes the hub"
                    if db == "postgresql"
                    else "on SQLite the hub polls every RR_CONSOLE_POLL_SECONDS"
                )
            ),
        }
    ]


BENCHES = {
    "intake": bench_intake,
    "voice": bench_voice,
    "surge": bench_surge,
    "matching": bench_matching,
    "grouping": bench_grouping,
    "responders": bench_responders,
    "fanout": bench_fanout,
    "pacing": bench_pacing,
    "live": bench_live,
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


def format_value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def table(results: list[dict[str, Any]], quick: bool) -> str:
    """The results as text: per benchmark its floor and ratio, the absolute figures
    beside them, and each target with MET or MISSED."""
    lines = [f"{'QUICK run (smaller sizes)' if quick else 'Full run'}"]
    met = missed = 0
    for result in results:
        lines.append("")
        lines.append(f"{result['id']}  {result['name']}  [{result['database']}]")
        lines.append(f"    ratio {result['ratio']}  (floor: {result['floor']})")
        for key, value in result["figures"].items():
            lines.append(f"    {key:<36} {format_value(value)}")
        for item in result["targets"]:
            verdict = "MET   " if item["met"] else "MISSED"
            met += item["met"]
            missed += not item["met"]
            lines.append(f"  {verdict} {item['target']}  (this run: {item['value']})")
        if result.get("note"):
            lines.append(f"    note: {result['note']}")
        lines.append(f"    took {result['seconds']:.0f} s")
    lines.append("")
    lines.append(f"targets met: {met}, missed: {missed}")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "load_average_at_start": load,
    }


def run_children(names: list[str], quick: bool, results: list[dict[str, Any]]) -> list[str]:
    """Each benchmark in a fresh interpreter; the names of those that failed."""
    failures = []
    for name in names:
        print(f"running {name}…", flush=True)
        command = [sys.executable, __file__, "--child", name] + (["--quick"] if quick else [])
        done = subprocess.run(  # noqa: S603 - this script, in a fresh interpreter
            command, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False
        )
        if done.returncode != 0:
            failures.append(name)
            print(f"{name} failed (exit {done.returncode}); see above", file=sys.stderr)
            continue
        results.extend(json.loads(done.stdout.strip().splitlines()[-1]))
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, about 2 minutes")
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated names")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--floor-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_server:
        floor_server_main()
        return 0
    if args.child:
        # One benchmark per process: each sets Django up on its own fresh database.
        started = time.perf_counter()
        results = BENCHES[args.child](args.quick)
        for result in results:
            result["quick"] = args.quick
            result["seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps(results))
        return 0
    about = machine()
    results = []
    started = time.perf_counter()
    failures = []
    with template_database() as template:
        os.environ["RR_BENCH_TEMPLATE"] = template
        failures = run_children(args.only.split(","), args.quick, results)
    total = time.perf_counter() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    database = "postgresql" if os.environ.get("DATABASE_URL") else "sqlite"
    out = RESULTS / f"{git_sha()}-{database}{'-quick' if args.quick else ''}.json"
    out.write_text(
        json.dumps(
            {
                **about,
                "quick": args.quick,
                "total_seconds": round(total, 1),
                "failed": failures,
                "results": results,
            },
            indent=2,
        )
    )
    print()
    print(table(results, args.quick))
    print(f"\n{len(results)} results in {total:.0f} s; written to {out.relative_to(ROOT)}")
    if failures:
        print(f"benchmarks that did not finish: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Load test: the production profile (core/serve.py) on a fresh PostgreSQL database,
driven by locust (tests/load/locustfile.py), headless, on loopback only, for a bounded
time. ``make load`` runs it for a minute; tests/load/test_load.py for a few seconds.

    python tests/load/run.py --seconds 60 --users 40            # as fast as it goes
    python tests/load/run.py --seconds 60 --users 30 --rate 10  # a fixed 300 req/s of texts

Prints requests a second, failures and latency percentiles per request name, and
returns them (``run()``) for the test. The server runs with production settings; the
public form's per-client limit is lifted, since every simulated neighbour shares
127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import hmac
import os
import re
import secrets
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

ADMIN_URL = os.environ.get("RR_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
TOKEN = "load-test-auth-token-0123456789"
PUBLIC_URL = "https://hotline.example.org"
USER = "load-dispatcher"
PASSWORD = secrets.token_urlsafe(16)


@dataclass
class Row:
    name: str
    requests: int
    failures: int
    rps: float
    p50: float
    p99: float


@contextmanager
def fresh_database() -> Iterator[str]:
    import psycopg

    name = f"rr_load_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            parts = urllib.parse.urlsplit(ADMIN_URL)
            yield urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(database_url: str, var_dir: str) -> dict[str, str]:
    from core.crypto import generate_key

    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SECRET_KEY": secrets.token_urlsafe(48),
        "RR_FIELD_KEYS": f"l1:{generate_key()}",
        "RR_HASH_KEY": generate_key(),
        "RR_ALTCHA_HMAC_KEY": generate_key(),
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/8"),
        "RR_SMS_PROVIDER": "console",
        "TWILIO_AUTH_TOKEN": TOKEN,
        "RR_PUBLIC_URL": PUBLIC_URL,
        "ALLOWED_HOSTS": "127.0.0.1",
        "CSRF_TRUSTED_ORIGINS": PUBLIC_URL,
        "RR_VAR_DIR": var_dir,
        "RR_WEB_REPORTS_PER_HOUR": "1000000",
        "RR_LOG_LEVEL": "WARNING",
        "RR_NETWORK_NAME": "Load test",
    }


@contextmanager
def production_server(env: dict[str, str], web: int, workers: int, log: Path) -> Iterator[str]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "rapidresponse.settings"},
        check=True,
    )
    created = subprocess.run(  # noqa: S603 - our own interpreter and script
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from accounts.models import User, Role; from accounts.testing import enrol_totp; "
            f"u = User.objects.create_user(username={USER!r}, password={PASSWORD!r}, "
            "role=Role.DISPATCHER, first_name='Load'); print(enrol_totp(u))",
        ],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "rapidresponse.settings"},
        check=True,
        capture_output=True,
        text=True,
    )
    # Staff need a second factor: the load test's dispatcher has an authenticator app.
    env["RR_LOAD_TOTP_SECRET"] = created.stdout.strip().splitlines()[-1]
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                *(sys.executable, "-m", "core.serve", "--collectstatic", "--web", str(web)),
                *("--workers", str(workers), "--port", str(port), "--grace", "5"),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                request = urllib.request.Request(  # noqa: S310 - loopback
                    base + "/healthz", headers={"X-Forwarded-Proto": "https"}
                )
                with urllib.request.urlopen(request, timeout=2):  # noqa: S310 - loopback
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"The server did not start; see {log}") from None
                time.sleep(0.3)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def totp_code(secret: str) -> str:
    """The current code of an authenticator app (RFC 6238: SHA-1, 30 s, 6 digits), away
    from the end of its step so it does not expire on the way."""
    while time.time() % 30 > 27:
        time.sleep(0.25)
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def log_in(base: str, *, totp_secret: str) -> str:
    """A dispatcher's session cookie, through the real login page, before the timed run:
    a login hashes the password (PBKDF2, a million rounds), which on a busy machine
    can take longer than a short run."""
    from http.cookies import SimpleCookie

    opener = urllib.request.build_opener(_NoRedirect)
    https = {"X-Forwarded-Proto": "https"}
    login_page = urllib.request.Request(base + "/accounts/login/", headers=https)  # noqa: S310
    with opener.open(login_page, timeout=120) as page:
        jar = SimpleCookie()
        for header in page.headers.get_all("Set-Cookie") or []:
            jar.load(header)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.read().decode())
    if csrf is None:
        raise RuntimeError("No CSRF token on the login page.")
    form = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": csrf.group(1), "username": USER, "password": PASSWORD}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback
        base + "/accounts/login/",
        data=form,
        headers={
            **https,
            "Cookie": f"csrftoken={jar['csrftoken'].value}",
            "Referer": PUBLIC_URL + "/accounts/login/",
        },
    )
    try:
        opener.open(request, timeout=120)
    except urllib.error.HTTPError as answer:  # the redirect after a successful login
        for header in answer.headers.get_all("Set-Cookie") or []:
            jar.load(header)
    if "sessionid" not in jar:
        raise RuntimeError("The load test's dispatcher could not log in.")
    # The second step: a code from the dispatcher's authenticator app.
    cookies = f"csrftoken={jar['csrftoken'].value}; sessionid={jar['sessionid'].value}"
    step = urllib.request.Request(  # noqa: S310 - loopback
        base + "/accounts/login/mfa/", headers={**https, "Cookie": cookies}
    )
    with opener.open(step, timeout=120) as page:
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.read().decode())
    if csrf is None:
        raise RuntimeError("No CSRF token on the MFA step.")
    code = totp_code(totp_secret)
    answer_form = urllib.parse.urlencode({"csrfmiddlewaretoken": csrf.group(1), "code": code})
    request = urllib.request.Request(  # noqa: S310 - loopback
        base + "/accounts/login/mfa/",
        data=answer_form.encode(),
        headers={**https, "Cookie": cookies, "Referer": PUBLIC_URL + "/accounts/login/mfa/"},
    )
    try:
        opener.open(request, timeout=120)
    except urllib.error.HTTPError as answer:  # the redirect after the second step
        for header in answer.headers.get_all("Set-Cookie") or []:
            jar.load(header)
    return str(jar["sessionid"].value)


def read_stats(prefix: Path) -> list[Row]:
    with open(f"{prefix}_stats.csv", newline="", encoding="utf-8") as handle:
        return [
            Row(
                name=line["Name"],
                requests=int(line["Request Count"]),
                failures=int(line["Failure Count"]),
                rps=float(line["Requests/s"]),
                p50=float(line["50%"] or 0),
                p99=float(line["99%"] or 0),
            )
            for line in csv.DictReader(handle)
        ]


def run(
    *,
    seconds: int,
    users: int,
    rate: float,
    web: int,
    workers: int,
    only_webhooks: bool = False,
) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="rr-load-") as tmp, fresh_database() as db:
        env = server_env(db, str(Path(tmp) / "var"))
        with production_server(env, web, workers, Path(tmp) / "serve.log") as base:
            session = log_in(base, totp_secret=env["RR_LOAD_TOTP_SECRET"])
            prefix = Path(tmp) / "locust"
            classes = ["TwilioWebhook"] if only_webhooks else []
            locust = subprocess.run(  # noqa: S603 - the locust installed beside our interpreter
                [
                    str(Path(sys.executable).parent / "locust"),
                    "-f",
                    str(Path(__file__).with_name("locustfile.py")),
                    "--headless",
                    "--host",
                    base,
                    "--users",
                    str(users),
                    "--spawn-rate",
                    str(max(users, 1)),
                    "--run-time",
                    f"{seconds}s",
                    "--stop-timeout",
                    "5",
                    "--csv",
                    str(prefix),
                    "--only-summary",
                    "--loglevel",
                    "WARNING",
                    *classes,
                ],
                cwd=ROOT,
                env={
                    **os.environ,
                    "RR_LOAD_TOKEN": TOKEN,
                    "RR_LOAD_PUBLIC_URL": PUBLIC_URL,
                    "RR_LOAD_SESSION": session,
                    "RR_LOAD_RATE": str(rate),
                },
                capture_output=True,
                text=True,
                timeout=seconds + 120,
                check=False,
            )
            if not Path(f"{prefix}_stats.csv").exists():
                raise RuntimeError(f"locust wrote no statistics:\n{locust.stderr[-3000:]}")
            failures = Path(f"{prefix}_failures.csv")
            if failures.exists() and len(failures.read_text().splitlines()) > 1:
                print(failures.read_text()[:3000], file=sys.stderr)
            return read_stats(prefix)


def report(rows: list[Row]) -> str:
    head = f"{'request':42} {'count':>7} {'fail':>5} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}"
    return "\n".join(
        [head]
        + [
            f"{row.name[:42]:42} {row.requests:7d} {row.failures:5d} {row.rps:8.1f} "
            f"{row.p50:7.0f} {row.p99:7.0f}"
            for row in rows
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument(
        "--rate", type=float, default=0, help="requests a second per webhook user (0: no wait)"
    )
    parser.add_argument("--web", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only-webhooks", action="store_true")
    args = parser.parse_args()
    rows = run(
        seconds=args.seconds,
        users=args.users,
        rate=args.rate,
        web=args.web,
        workers=args.workers,
        only_webhooks=args.only_webhooks,
    )
    print(report(rows))
    return 1 if any(row.failures for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

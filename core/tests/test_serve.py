"""The production profile (core/serve.py): start-up checks, supervision, and a real run
of two web processes and two task workers against a PostgreSQL database of its own."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings
from twilio.request_validator import RequestValidator

from core import serve
from core.crypto import generate_key

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_ADMIN_URL = os.environ.get(
    "RR_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)
TOKEN = "serve-test-auth-token-0123456789"
PUBLIC_URL = "https://hotline.example.org"


def production_env(**more: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SECRET_KEY": secrets.token_urlsafe(48),
        "RR_FIELD_KEYS": f"p1:{generate_key()}",
        "RR_HASH_KEY": generate_key(),
        "RR_ALTCHA_HMAC_KEY": generate_key(),
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/rr",
        "REDIS_URL": "redis://127.0.0.1:6379/8",
        "RR_SMS_PROVIDER": "console",
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    env.update(more)
    return env


def test_a_complete_environment_has_no_problems() -> None:
    assert serve.problems(production_env()) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"DATABASE_URL": ""}, "DATABASE_URL must be set to a PostgreSQL database"),
        ({"DATABASE_URL": "sqlite:///var/db.sqlite3"}, "DATABASE_URL must point at PostgreSQL"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL must point at PostgreSQL"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL must point at PostgreSQL"),
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set"),
        ({"RR_FIELD_KEYS": " "}, "RR_FIELD_KEYS must be set"),
        ({"RR_HASH_KEY": ""}, "RR_HASH_KEY must be set"),
        ({"REDIS_URL": ""}, "REDIS_URL must be set"),
        ({"RR_SMS_PROVIDER": ""}, "RR_SMS_PROVIDER must be set"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS must be set"),
        ({"DEBUG": "1"}, "DEBUG must be off"),
        ({"DJANGO_SETTINGS_MODULE": "rapidresponse.test_settings"}, "DJANGO_SETTINGS_MODULE"),
    ],
)
def test_each_missing_or_unsafe_setting_is_named(change: dict[str, str], expected: str) -> None:
    found = serve.problems(production_env(**change))
    assert len(found) == 1
    assert found[0].startswith(expected)


def test_refuses_to_start_with_a_clear_message_and_starts_nothing() -> None:
    env = production_env(DATABASE_URL="sqlite:///x.sqlite3", SECRET_KEY="")
    result = subprocess.run(
        [sys.executable, "-m", "core.serve", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "DATABASE_URL must point at PostgreSQL" in result.stderr
    assert "SECRET_KEY must be set" in result.stderr
    assert "not started." in result.stderr
    assert "Traceback" not in result.stderr
    assert "manage.py" not in result.stderr  # no check, no migration ran


def test_backoff_doubles_up_to_its_ceiling() -> None:
    assert [serve.backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_process_that_exits_is_restarted_after_its_backoff_and_stop_ends_all() -> None:
    quitter = serve.Child("quitter", [sys.executable, "-c", "raise SystemExit(3)"])
    sleeper = serve.Child("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    supervisor = serve.Supervisor([quitter, sleeper], env=dict(os.environ), grace=5)
    for child in supervisor.children:
        child.start(supervisor.env)
    assert quitter.process is not None
    quitter.process.wait(timeout=10)
    now = time.monotonic()
    supervisor.check(now)
    assert quitter.restart_at == pytest.approx(now + 1)
    assert quitter.quick_failures == 1
    supervisor.check(now + 0.5)
    assert quitter.restarts == 0
    supervisor.check(now + 1.01)
    assert quitter.restarts == 1
    first_sleeper = sleeper.process
    quitter.process.wait(timeout=10)
    supervisor.check(time.monotonic())
    assert quitter.quick_failures == 2  # failed quickly again: a longer wait
    assert quitter.restart_at is not None
    assert quitter.restart_at - time.monotonic() > 1.5
    assert sleeper.process is first_sleeper and sleeper.alive
    assert supervisor.stop() == 0
    assert not sleeper.alive


def test_stop_kills_what_ignores_sigterm_after_the_grace_period() -> None:
    stubborn = serve.Child(
        "stubborn",
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)",
        ],
    )
    supervisor = serve.Supervisor([stubborn], env=dict(os.environ), grace=1)
    stubborn.start(supervisor.env)
    time.sleep(0.5)  # let it install its handler
    assert supervisor.stop() == 1
    assert stubborn.process is not None
    assert stubborn.process.returncode == -signal.SIGKILL


def test_collectstatic_succeeds_with_the_production_storage(tmp_path: Path) -> None:
    """Production (DEBUG off) hashes and compresses the static files, vendored ones too."""
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "core.storage.StaticFilesStorage"},
    }
    with override_settings(STATIC_ROOT=tmp_path, STORAGES=storages):
        call_command("collectstatic", "--no-input", verbosity=0)
    assert (tmp_path / "staticfiles.json").exists()
    hashed = list((tmp_path / "vendor" / "leaflet").glob("leaflet.*.js"))
    assert hashed, "leaflet.js was not collected under a hashed name"


# The whole profile, against a PostgreSQL database made for this test.


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    import psycopg

    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        if os.environ.get("CI"):
            raise
        pytest.skip("No PostgreSQL on 127.0.0.1:5432 (set RR_TEST_POSTGRES_URL).")
    name = f"rr_serve_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            parts = urllib.parse.urlsplit(POSTGRES_ADMIN_URL)
            yield urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    # The load balancer terminates TLS and says so; production settings redirect otherwise.
    request = urllib.request.Request(url, headers={"X-Forwarded-Proto": "https"})  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def _post_sms(base: str, sid: str, body: str) -> tuple[int, str]:
    path = "/hooks/twilio/sms"
    params = {"MessageSid": sid, "From": "+15105550177", "To": "+15105550000", "Body": body}
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC_URL + path, params)
    request = urllib.request.Request(  # noqa: S310 - loopback
        base + path,
        data=urllib.parse.urlencode(params).encode(),
        headers={"X-Twilio-Signature": signature, "X-Forwarded-Proto": "https"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        return response.status, response.read().decode()


def _wait_for(what: str, condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"Timed out waiting for {what}.")


def _pids(log: Path, name: str) -> list[int]:
    return [int(p) for p in re.findall(rf"{name}(?: \d+)? started \(pid (\d+)\)", log.read_text())]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_web_and_two_task_workers_serve_restart_and_stop_cleanly(
    fresh_postgres: str, tmp_path: Path
) -> None:
    import psycopg

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = production_env(
        DATABASE_URL=fresh_postgres,
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/8"),
        TWILIO_AUTH_TOKEN=TOKEN,
        RR_PUBLIC_URL=PUBLIC_URL,
        RR_VAR_DIR=str(tmp_path / "var"),
        RR_DB_POOL_SIZE="4",
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        supervisor = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                *(sys.executable, "-m", "core.serve", "--migrate", "--collectstatic"),
                *("--web", "2", "--workers", "2", "--port", str(port), "--grace", "10"),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for("/healthz", lambda: _get(base + "/healthz") == (200, "ok\n"), 180)
        assert "System check identified no issues" in log.read_text()
        assert len(_pids(log, "web")) == 2
        assert len(_pids(log, "task worker")) == 2
        # Production settings hold: plain http is redirected to https.
        plain = urllib.request.Request(base + "/healthz")  # noqa: S310 - loopback
        opener = urllib.request.build_opener(_NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as redirected:
            opener.open(plain, timeout=5)
        assert redirected.value.code == 301

        # A text through the webhook becomes a report, made by a task worker.
        status, twiml = _post_sms(base, "SM" + "1" * 32, "ICE agents at 35th Ave and MacArthur")
        assert status == 200 and "<Message>" in twiml

        def reports() -> int:
            with psycopg.connect(fresh_postgres, autocommit=True) as conn:
                row = conn.execute("SELECT count(*) FROM intake_report").fetchone()
                return int(row[0]) if row else 0

        _wait_for("the report", lambda: reports() == 1, 60)

        # A killed task worker is started again, and the next text still becomes a report.
        first_worker = _pids(log, "task worker 1")[0]
        os.kill(first_worker, signal.SIGKILL)
        _wait_for("task worker 1 again", lambda: len(_pids(log, "task worker 1")) == 2, 30)
        assert "task worker 1 stopped (signal 9); restarting in 1 s" in log.read_text()
        # A killed web process: the other keeps answering on the same port meanwhile.
        os.kill(_pids(log, "web 1")[0], signal.SIGKILL)
        assert _get(base + "/healthz") == (200, "ok\n")
        _wait_for("web 1 again", lambda: len(_pids(log, "web 1")) == 2, 30)
        _post_sms(base, "SM" + "2" * 32, "Two vans at Fruitvale BART")
        _wait_for("the second report", lambda: reports() == 2, 60)
        _wait_for("/healthz after restarts", lambda: _get(base + "/healthz") == (200, "ok\n"), 30)

        # SIGTERM stops everything cleanly.
        children = _pids(log, "web") + _pids(log, "task worker")
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0
        text = log.read_text()
        assert "stopping on SIGTERM" in text and "serve: stopped" in text
        assert "killing it" not in text
        assert not [pid for pid in children if _alive(pid)]
        with pytest.raises(OSError):
            _get(base + "/healthz")
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait(timeout=10)
        for pid in _pids(log, "web") + _pids(log, "task worker"):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None

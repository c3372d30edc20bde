"""A private PostgreSQL cluster and Redis server that these tests may stop, kill and
restart, and the app's processes (web server, workers) pointed at them.

The machine's PostgreSQL and Redis serve other work and are never touched. Everything
here runs in subprocesses with production settings (``rapidresponse.settings``: the
connection pool, the Redis cache) against the private servers; the test process only
reads the results with psycopg. Skips when the server binaries are missing, unless
RR_REQUIRE_RELIABILITY=1 (CI), where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conftest import TWILIO_TOKEN

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("RR_PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PUBLIC_URL = "https://hotline.example.org"
TEMPLATE_DB = "rr_template"

# The fixed test keys (rapidresponse/test_settings.py), so a test can decrypt what the
# processes wrote.
TEST_ENV = {
    "SECRET_KEY": "test-secret-key-not-for-production-0123456789",
    "RR_FIELD_KEYS": "t1:" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    "RR_HASH_KEY": "aGFzaC1rZXktZm9yLXRlc3RzLW9ubHktMDEyMzQ1Njc=",
    "RR_ALTCHA_HMAC_KEY": "YWx0Y2hhLWtleS1mb3ItdGVzdHMtb25seS0wMTIzNDU=",
}


def _missing_binaries() -> list[str]:
    wanted = [PG_BIN / "initdb", PG_BIN / "pg_ctl", PG_BIN / "postgres", Path(REDIS_SERVER)]
    return [str(path) for path in wanted if not os.access(path, os.X_OK)]


def require_binaries() -> None:
    missing = _missing_binaries()
    if not missing:
        return
    reason = f"reliability tests need PostgreSQL 15 and redis-server; missing: {missing}"
    if os.environ.get("RR_REQUIRE_RELIABILITY") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Any, *, within: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(every)


class PrivatePostgres:
    """A throw-away cluster on a free port, owned by the ``postgres`` OS user when the
    tests run as root (initdb refuses root)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="rr-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run(  # noqa: S603 - the distribution's binaries, fixed arguments
            [*self.as_user, *args], check=True, capture_output=True, cwd=self.root
        )

    def init(self) -> None:
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip

    def start(self) -> None:
        # fsync off: a killed server keeps what it wrote in the OS cache (the machine
        # does not crash here), and the tests run much faster.
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
            "-o", options, "-w", "-t", "30", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def kill(self) -> None:
        """SIGKILL the postmaster: the database disappears mid-transaction."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not self.is_up(), within=10, what="PostgreSQL to die")
        # Its backends exit once they notice; the next start recovers from the WAL.
        time.sleep(0.5)

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def is_up(self) -> bool:
        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=1):
                return True
        except psycopg.OperationalError:
            return False

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def sql(self, database: str, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def create_database(self, name: str, *, template: str | None = None) -> None:
        clause = f" TEMPLATE {template}" if template else ""
        self.sql("postgres", f'CREATE DATABASE "{name}"{clause}')

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - the distribution's binary
            [
                REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.directory), "--logfile", "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self.is_up, within=10, what="Redis to start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def is_up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    """One cluster for the session, with the app's schema migrated into a template that
    each test copies (CREATE DATABASE … TEMPLATE is much faster than migrating)."""
    require_binaries()
    cluster = PrivatePostgres()
    try:
        cluster.init()
        cluster.start()
        cluster.create_database(TEMPLATE_DB)
        env = AppEnv(cluster, database=TEMPLATE_DB, var_dir=cluster.root / "var-template")
        env.manage("migrate", "--no-input", timeout=300)
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    require_binaries()
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


class AppEnv:
    """The environment of the app's processes for one test: its own database on the
    private cluster, its own var dir (and so spool), the private Redis if any."""

    def __init__(
        self,
        cluster: PrivatePostgres,
        *,
        database: str,
        var_dir: Path,
        redis: PrivateRedis | None = None,
        **extra: str,
    ) -> None:
        self.cluster = cluster
        self.database = database
        self.var_dir = var_dir
        var_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("RR_", "DJANGO_"))},
            **TEST_ENV,
            "DJANGO_SETTINGS_MODULE": "rapidresponse.settings",
            "DEBUG": "1",
            "DATABASE_URL": cluster.url(database),
            "RR_VAR_DIR": str(var_dir),
            "RR_SSL_REDIRECT": "0",
            "RR_PUBLIC_URL": PUBLIC_URL,
            "ALLOWED_HOSTS": "127.0.0.1,localhost,hotline.example.org",
            "RR_NETWORK_NAME": "Test Rapid Response",
            "RR_SMS_PROVIDER": "twilio",
            "TWILIO_ACCOUNT_SID": "ACtest",
            "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "RR_SMS_FROM": "+15105550000",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
        if redis is not None:
            self.env["REDIS_URL"] = redis.url
        else:
            self.env.pop("REDIS_URL", None)
        self.processes: list[subprocess.Popen[bytes]] = []

    def sql(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.cluster.sql(self.database, query, params)

    def manage(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(  # noqa: S603 - our interpreter and manage.py
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stderr.decode()[-3000:]}")
        return done.stdout.decode()

    def python(self, script: str, *, timeout: float = 300) -> str:
        """Run ``script`` with Django set up against this test's database."""
        done = subprocess.run(  # noqa: S603 - our interpreter, a script of the test's
            [sys.executable, "-c", "import django; django.setup()\n" + script],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"script failed:\n{done.stderr.decode()[-3000:]}")
        return done.stdout.decode()

    def spawn(
        self, args: list[str], *, log: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        out = (self.var_dir / f"{log}.log").open("ab")
        process = subprocess.Popen(  # noqa: S603 - our interpreter and manage.py
            [sys.executable, *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdout=out,
            stderr=out,
        )
        out.close()
        self.processes.append(process)
        return process

    def log(self, name: str) -> str:
        path = self.var_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def web_server(self) -> WebServer:
        server = WebServer(self)
        server.start()
        return server

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


class WebServer:
    """uvicorn serving the ASGI app in a process of its own."""

    def __init__(self, env: AppEnv) -> None:
        self.env = env
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = self.env.spawn(
            [
                "-m", "uvicorn", "rapidresponse.asgi:application", "--host", "127.0.0.1",
                "--port", str(self.port), "--no-access-log", "--timeout-graceful-shutdown", "1",
            ],
            log="web",
        )  # fmt: skip

        def listening() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError("the web server died:\n" + self.env.log("web")[-3000:])
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False

        wait_until(listening, within=60, what="the web server")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def app_env(private_postgres: PrivatePostgres, tmp_path: Path) -> Iterator[AppEnv]:
    name = f"rr_{uuid.uuid4().hex[:12]}"
    private_postgres.create_database(name, template=TEMPLATE_DB)
    env = AppEnv(private_postgres, database=name, var_dir=tmp_path / "var")
    try:
        yield env
    finally:
        env.stop_all()
        if not private_postgres.is_up():
            private_postgres.start()
        with contextlib.suppress(Exception):
            private_postgres.sql("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

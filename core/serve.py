"""The production profile: several ASGI web processes and task workers, supervised.

``python -m core.serve --web 2 --workers 2 --port 8000`` (``make serve``) checks the
environment before anything starts, runs ``check --deploy`` (and, when asked, the
migrations and collectstatic), binds one listening socket and starts the processes:

- web processes: uvicorn, each accepting on the inherited socket, so a process that
  dies loses no queued connection and its replacement takes the same port;
- task workers: ``manage.py run_worker`` (the tasks queue plus the periodic jobs, which
  are safe to run from several workers at once).

A process that exits on its own is started again after a delay that doubles with each
quick failure (1 s ... 30 s) and resets once it has run for a minute. SIGTERM or SIGINT
stops the supervisor: it closes its copy of the socket and forwards SIGTERM, so web
processes stop accepting and finish their requests (open console streams end after
``--grace`` seconds) and task workers finish the task they are running; whatever is
still running after ``--grace`` is killed.

The checks read the environment only, before Django loads, so a missing key is one
clear line rather than a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_SETTINGS = "rapidresponse.settings"
REQUIRED = {
    "SECRET_KEY": "Django's signing key",
    "RR_FIELD_KEYS": "the field-encryption keys",
    "RR_HASH_KEY": "the keyed-hash key",
    "RR_ALTCHA_HMAC_KEY": "the key that signs the web form's proof-of-work challenges",
    "RR_SMS_PROVIDER": "twilio (or console for a rehearsal)",
    "ALLOWED_HOSTS": "the host names the load balancer forwards",
    "REDIS_URL": (
        "the shared cache: rate limits and login throttles must count across every web "
        "process, and Redis must require a password"
    ),
}
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
# A process that ran this long before exiting is restarted quickly again.
HEALTHY_AFTER = 60.0
TRUTHY = {"1", "true", "yes", "on"}


def log(message: str) -> None:
    print(f"serve: {message}", file=sys.stderr, flush=True)


def problems(environ: Mapping[str, str]) -> list[str]:
    """What stops this environment from running the production profile (empty: none)."""
    found: list[str] = []
    url = environ.get("DATABASE_URL", "")
    if not url:
        found.append("DATABASE_URL must be set to a PostgreSQL database (postgres://...).")
    else:
        import dj_database_url

        try:
            engine = dj_database_url.parse(url)["ENGINE"]
        except Exception:  # dj_database_url raises plain ValueError/KeyError for odd URLs
            engine = ""
        if engine != "django.db.backends.postgresql":
            found.append(
                "DATABASE_URL must point at PostgreSQL (postgres://...): SQLite admits one "
                "writer and cannot serve several processes."
            )
    for name, meaning in REQUIRED.items():
        if not environ.get(name, "").strip():
            found.append(f"{name} must be set ({meaning}).")
    if environ.get("DEBUG", "").strip().lower() in TRUTHY:
        found.append("DEBUG must be off in production.")
    settings_module = environ.get("DJANGO_SETTINGS_MODULE", PRODUCTION_SETTINGS)
    if settings_module != PRODUCTION_SETTINGS:
        found.append(
            f"DJANGO_SETTINGS_MODULE must be {PRODUCTION_SETTINGS}, not {settings_module}."
        )
    return found


def manage(*args: str, env: Mapping[str, str]) -> None:
    """Run one manage.py command to completion; a failure stops the start-up."""
    log(f"manage.py {' '.join(args)}")
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=False)  # noqa: S603 - our own interpreter and script
    if result.returncode != 0:
        raise SystemExit(f"serve: manage.py {args[0]} failed (exit {result.returncode}).")


def listen(host: str, port: int, backlog: int = 2048) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def _stop_with_parent() -> None:
    """In the child before exec: SIGTERM it if the supervisor dies (Linux), so a killed
    supervisor leaves no processes behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: list[str]
    pass_fds: tuple[int, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_failures: int = 0
    restart_at: float | None = None
    restarts: int = 0

    def start(self, env: Mapping[str, str]) -> None:
        # A process group of its own: a Ctrl+C in the terminal reaches the supervisor
        # only, which forwards one SIGTERM (a second one makes a task worker abandon
        # the task it is running).
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            self.argv,
            cwd=ROOT,
            env=dict(env),
            pass_fds=self.pass_fds,
            process_group=0,
            preexec_fn=_stop_with_parent,  # noqa: PLW1509 - the supervisor runs no threads
        )
        self.started_at = time.monotonic()
        self.restart_at = None
        log(f"{self.name} started (pid {self.process.pid})")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def backoff(quick_failures: int) -> float:
    """Seconds to wait before restarting after this many quick failures in a row."""
    return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, quick_failures - 1)))


@dataclass
class Supervisor:
    children: list[Child]
    env: Mapping[str, str]
    grace: float = 30.0
    listener: socket.socket | None = None
    stopping: bool = False
    tick: float = 0.1
    _signals: list[int] = field(default_factory=list)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for child in self.children:
            child.start(self.env)
        while not self.stopping:
            self.check(time.monotonic())
            time.sleep(self.tick)
        return self.stop()

    def check(self, now: float) -> None:
        """Restart what exited, once its back-off has passed."""
        for child in self.children:
            if child.process is None or child.alive:
                continue
            if child.restart_at is None:
                code = child.process.returncode
                how = f"signal {-code}" if code < 0 else f"exit {code}"
                if now - child.started_at >= HEALTHY_AFTER:
                    child.quick_failures = 0
                child.quick_failures += 1
                delay = backoff(child.quick_failures)
                child.restart_at = now + delay
                log(f"{child.name} stopped ({how}); restarting in {delay:.0f} s")
            elif now >= child.restart_at:
                child.restarts += 1
                child.start(self.env)

    def stop(self) -> int:
        names = ", ".join(signal.Signals(s).name for s in self._signals) or "request"
        log(f"stopping on {names}: no new connections; finishing current work")
        if self.listener is not None:
            self.listener.close()
        for child in self.children:
            if child.process is not None and child.alive:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while any(c.alive for c in self.children) and time.monotonic() < deadline:
            time.sleep(self.tick)
        killed = [c for c in self.children if c.alive]
        for child in killed:
            log(f"{child.name} did not stop within {self.grace:.0f} s; killing it")
            if child.process is not None:
                child.process.kill()
        for child in self.children:
            if child.process is not None:
                child.process.wait()
        log("stopped")
        return 1 if killed else 0


def web_argv(fd: int, grace: float) -> list[str]:
    return [
        sys.executable,
        "-m",
        "core.serve",
        "web-process",
        "--fd",
        str(fd),
        "--grace",
        str(grace),
    ]


def worker_argv() -> list[str]:
    return [sys.executable, "manage.py", "run_worker"]


def run_web_process(fd: int, grace: float) -> None:
    """One uvicorn server on the socket the supervisor bound (auto-detects its family)."""
    import uvicorn

    sock = socket.socket(fileno=fd)
    config = uvicorn.Config(
        "rapidresponse.asgi:application",
        log_config=None,  # Django's LOGGING, with its scrubbing filter
        access_log=False,  # core.middleware.AccessLogMiddleware logs without addresses
        lifespan="off",
        # The client address is read once, by core.client under RR_TRUSTED_PROXY_COUNT;
        # uvicorn must not replace it from X-Forwarded-For on its own terms.
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=max(1, int(grace)),
    )

    class WebServer(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            await super().shutdown(sockets)
            from incidents import live

            await live.shutdown()

    WebServer(config).run(sockets=[sock])


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m core.serve", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command")
    web = sub.add_parser("web-process", help="internal: one web process on an inherited socket")
    web.add_argument("--fd", type=int, required=True)
    web.add_argument("--grace", type=float, default=30.0)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (8000)")
    parser.add_argument("--web", type=int, default=2, help="web processes (2)")
    parser.add_argument("--workers", type=int, default=2, help="task workers (2)")
    parser.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="seconds to finish requests and tasks after SIGTERM (30)",
    )
    parser.add_argument("--migrate", action="store_true", help="run migrations first")
    parser.add_argument("--collectstatic", action="store_true", help="collect static files first")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    base_env: dict[str, Any] = dict(os.environ if environ is None else environ)
    if args.command == "web-process":
        run_web_process(args.fd, args.grace)
        return 0
    if args.web < 1 or args.workers < 0:
        log("--web must be at least 1 and --workers at least 0.")
        return 2
    found = problems(base_env)
    if found:
        for problem in found:
            log(problem)
        log("not started.")
        return 2
    env = {**base_env, "DJANGO_SETTINGS_MODULE": PRODUCTION_SETTINGS}
    manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    if args.migrate:
        manage("migrate", "--no-input", env=env)
    if args.collectstatic:
        manage("collectstatic", "--no-input", "--verbosity", "0", env=env)
    listener = listen(args.host, args.port)
    fd = listener.fileno()
    children = [
        Child(f"web {i + 1}", web_argv(fd, args.grace), pass_fds=(fd,)) for i in range(args.web)
    ]
    children += [Child(f"task worker {i + 1}", worker_argv()) for i in range(args.workers)]
    log(
        f"listening on http://{args.host}:{listener.getsockname()[1]}/ with {args.web} web "
        f"and {args.workers} task worker processes"
    )
    return Supervisor(children, env, grace=args.grace, listener=listener).run()


if __name__ == "__main__":
    sys.exit(main())

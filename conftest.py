"""Fixtures shared by every app's tests."""

from __future__ import annotations

import gc
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import Client, TestCase
from twilio.request_validator import RequestValidator

from accounts.models import Role, User
from core.areas import load_service_area, parse_geojson
from core.models import ServiceArea
from core.ratelimit import local_counters

TWILIO_TOKEN = "test-auth-token-0123456789abcdef"  # noqa: S105 - a fake token for signing
DEMO_AREA = Path(__file__).resolve().parent / "demo" / "neighbourhoods.geojson"

# Points inside the demo neighbourhoods.
FRUITVALE = (37.7766, -122.2265)
DOWNTOWN = (37.8080, -122.2720)
OUTSIDE_AREA = (37.8715, -122.2730)  # Berkeley: valid, but not covered


T = TypeVar("T")


@pytest.fixture(autouse=True)
def _force_login_completes_mfa(monkeypatch: pytest.MonkeyPatch) -> None:
    """``client.force_login(user)`` is Django's test API for "already fully signed in",
    and the project's tests use it that way: it now also marks the session as having
    completed MFA (``accounts.mfa``), as a real login with a second factor would.
    The MFA tests themselves log in through the real forms."""
    from django.test.client import ClientMixin

    from accounts import mfa

    original = ClientMixin.force_login

    def force_login(self: Any, user: Any, backend: str | None = None) -> None:
        original(self, user, backend)
        session = self.session
        session[mfa.MFA_AT] = int(time.time())
        session.save()

    monkeypatch.setattr(ClientMixin, "force_login", force_login)


@pytest.fixture(autouse=True)
def _isolated(settings: Any, tmp_path: Path) -> Iterator[None]:
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    settings.RR_SPOOL_DIR = tmp_path / "spool"
    settings.TWILIO_ACCOUNT_SID = "ACtest"
    # Case keys live in files (cases.keystore): each test gets its own key store, so
    # one test's cases never reach another's key rotation or purge.
    settings.RR_CASE_KEYSTORE = str(tmp_path / "case-keys")
    cache.clear()
    local_counters.clear()
    yield
    cache.clear()
    local_counters.clear()


@pytest.fixture
def service_area(db: None) -> ServiceArea:
    return load_service_area("Test area", parse_geojson(DEMO_AREA.read_text(encoding="utf-8")))


def make_user(role: Role, username: str | None = None) -> User:
    user = User.objects.create_user(
        username=username or f"{role.value}-user",
        password="a-long-test-password",  # noqa: S106 - test accounts only
        role=role,
        first_name=role.label.split()[0],
    )
    return user


@pytest.fixture
def dispatcher(db: None) -> User:
    return make_user(Role.DISPATCHER)


@pytest.fixture
def coordinator(db: None) -> User:
    return make_user(Role.COORDINATOR)


@pytest.fixture
def verifier(db: None) -> User:
    return make_user(Role.VERIFIER)


@pytest.fixture
def dispatcher_client(dispatcher: User) -> Client:
    client = Client()
    client.force_login(dispatcher)
    return client


def sign(url: str, params: dict[str, str], token: str = TWILIO_TOKEN) -> str:
    """The X-Twilio-Signature Twilio would send, computed by the twilio library."""
    return str(RequestValidator(token).compute_signature(url, params))


def post_twilio(
    client: Client,
    path: str,
    params: dict[str, str],
    *,
    signed_url: str | None = None,
    signature: str | None = None,
    **extra: Any,
) -> Any:
    url = signed_url or f"{settings.RR_PUBLIC_URL}{path}"
    headers: dict[str, Any] = {}
    if signature != "":
        headers["HTTP_X_TWILIO_SIGNATURE"] = signature or sign(url, params)
    with committed():
        return client.post(path, params, **headers, **extra)


def committed() -> Any:
    """Run the work queued for after the commit, as a real commit would.

    Tests run inside a transaction that is rolled back, so ``on_commit`` callbacks
    (queued tasks, console wake-ups) would otherwise never run.
    """
    return TestCase.captureOnCommitCallbacks(execute=True)


def at_once(count: int, work: Callable[[], T]) -> list[T]:
    """Run ``work`` in ``count`` threads released together, each with its own database
    connection (closed when it ends); their results in the order they finished. The
    first error a thread raised is raised here once all have ended."""
    barrier = threading.Barrier(count)
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(work())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def sms_params(sid: str, body: str, sender: str = "+15105550123", **more: str) -> dict[str, str]:
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "ACtest",
        "From": sender,
        "To": "+15105550000",
        "Body": body,
        "NumMedia": "0",
    }
    params.update(more)
    return params


class LiveServer:
    """The ASGI application served by uvicorn on a loopback port, in a thread."""

    def __init__(self) -> None:
        import uvicorn

        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(
            "rapidresponse.asgi:application",
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )

        class Server(uvicorn.Server):
            async def serve(self, sockets: list[socket.socket] | None = None) -> None:
                import asyncio

                self.rr_loop = asyncio.get_running_loop()
                await super().serve(sockets)

        self.server = Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("The test server did not start.")
            time.sleep(0.02)

    def stop(self) -> None:
        import asyncio

        from incidents import live

        loop = getattr(self.server, "rr_loop", None)
        if loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(live.shutdown(), loop).result(timeout=5)
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()
        # Request threads have ended; collect their connections so none stays open.
        gc.collect()


@pytest.fixture
def live_asgi(transactional_db: None, settings: Any) -> Iterator[LiveServer]:
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
    server = LiveServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def twilio_api(settings: Any) -> Iterator[Any]:
    """The twilio provider, with the real client pointed at a local stand-in."""
    from messaging.providers.twilio.standin import TwilioStandIn

    with TwilioStandIn(account_sid="ACtest", auth_token=TWILIO_TOKEN) as api:
        settings.RR_SMS_PROVIDER = "twilio"
        settings.TWILIO_API_BASE = api.url
        settings.RR_SMS_FROM = "+15105550000"
        settings.RR_SMS_RATE_PER_SECOND = 1000
        yield api

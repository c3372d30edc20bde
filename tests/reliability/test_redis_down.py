"""Redis dies: intake, the console and an alert keep working on their fallbacks (rate
limits and the login throttle counted in the process, the sender's lock and the console's
wake-ups on PostgreSQL, tasks in the database), and nothing answers 500."""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from intake.tests.pow import solve
from messaging.providers.twilio.standin import TwilioStandIn
from tests.reliability.conftest import AppEnv, PrivateRedis, wait_until
from tests.reliability.test_intake_outage import post_sms

PASSWORD = "a-long-test-password"
# Staff need a second factor: both dispatchers have this authenticator-app secret.
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
SUBSCRIBERS = 20

SETUP = f"""
from accounts.models import Role, User
from alerts.tests.factories import subscriber
from conftest import DEMO_AREA, FRUITVALE
from core.areas import load_service_area, parse_geojson

load_service_area("Test area", parse_geojson(DEMO_AREA.read_text(encoding="utf-8")))
from allauth.mfa.totp.internal.auth import TOTP
for name in ("alex", "sam"):
    person = User.objects.create_user(username=name, password="{PASSWORD}", role=Role.DISPATCHER)
    TOTP.activate(person, "{TOTP_SECRET}")
for i in range({SUBSCRIBERS}):
    subscriber(at=(FRUITVALE[0] + i * 0.00002, FRUITVALE[1]), radius_m=100)
"""

ALERT = """
from accounts.models import User
from alerts import actions
from alerts.models import AlertKind
from alerts.tests.conftest import incident_at
from conftest import FRUITVALE
from incidents.models import IncidentStatus

alex, sam = User.objects.get(username="alex"), User.objects.get(username="sam")
incident = incident_at(FRUITVALE, IncidentStatus.VERIFIED, alex)
alert = actions.compose(
    actor=alex, incident=incident, kind=AlertKind.ALERT, radius_m=1000,
    bodies={"en": "VERIFIED: agents at 35th.", "es": "VERIFICADO: agentes en la 35."},
)
actions.approve(actor=sam, alert=alert)
"""


class Browser:
    """Cookies and CSRF tokens, over plain HTTP (the app runs with DEBUG on here)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )
        self.statuses: list[tuple[str, int]] = []

    def request(self, path: str, data: dict[str, str] | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base + path, data=body)  # noqa: S310 - loopback
        try:
            with self.opener.open(request, timeout=30) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        self.statuses.append((path, status))
        return status, text

    def form_token(self, path: str) -> str:
        status, page = self.request(path)
        assert status == 200, (path, status)
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert found, f"no CSRF token on {path}"
        return found.group(1)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def login(browser: Browser, username: str, password: str) -> int:
    """The password step's status; after a right password, the MFA step is done too."""
    from accounts.testing import code_now

    token = browser.form_token("/accounts/login/")
    status, _ = browser.request(
        "/accounts/login/",
        {"csrfmiddlewaretoken": token, "username": username, "password": password},
    )
    if status == 302:
        token = browser.form_token("/accounts/login/mfa/")
        second, _ = browser.request(
            "/accounts/login/mfa/", {"csrfmiddlewaretoken": token, "code": code_now(TOTP_SECRET)}
        )
        assert second == 302, second
    return status


def read_stream(port: int, cookies: str, into: list[str], stop: threading.Event) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/console/events/", headers={"Cookie": cookies})
    response = conn.getresponse()
    into.append(f"status {response.status}")
    while not stop.is_set():
        line = response.readline()
        if not line:
            break
        into.append(line.decode())
    conn.close()


def test_with_redis_down_intake_the_console_and_alerts_keep_working(
    app_env: AppEnv, private_redis: PrivateRedis
) -> None:
    with TwilioStandIn(account_sid="ACtest", auth_token=app_env.env["TWILIO_AUTH_TOKEN"]) as api:
        app_env.env.update(
            {
                "REDIS_URL": private_redis.url,
                "TWILIO_API_BASE": api.url,
                "RR_SMS_RATE_PER_SECOND": "100",
                "RR_CONFIRMATIONS_REQUIRED": "0",
            }
        )
        app_env.python(SETUP)
        server = app_env.web_server()
        worker = app_env.spawn(["manage.py", "run_worker", "--interval", "0.05"], log="worker")
        browser = Browser(server.url)
        assert login(browser, "alex", PASSWORD) == 302  # with Redis up

        private_redis.kill()

        # The console and its live stream.
        status, _ = browser.request("/console/")
        assert status == 200
        cookies = "; ".join(f"{c.name}={c.value}" for c in browser.jar)
        lines: list[str] = []
        stop = threading.Event()
        reader = threading.Thread(
            target=read_stream, args=(server.port, cookies, lines, stop), daemon=True
        )
        reader.start()
        wait_until(lambda: bool(lines), within=15, what="the event stream to open")
        assert lines[0] == "status 200"

        # A text: answered, stored, made a report, and on the open console.
        answer = post_sms(server.port, "SMredis1", "+15105550199", "Agents at 35th and Foothill")
        assert answer.status == 200
        assert "received your report" in answer.body
        wait_until(
            lambda: any(line.startswith("event:") for line in lines),
            within=30,
            what="the report on the live console",
        )
        stop.set()

        # The web form, rate-limited in the process.
        anonymous = Browser(server.url)
        token = anonymous.form_token("/report/")
        _, challenge = anonymous.request("/report/challenge/")
        status, _ = anonymous.request(
            "/report/",
            {
                "csrfmiddlewaretoken": token,
                "text": "Two unmarked vans outside the laundromat",
                "location_text": "International Blvd & 35th Ave",
                "lat": "",
                "lng": "",
                "observed_at": "",
                "callback": "",
                "submission": "2f1d8f8e-7c4f-4a43-9a57-4c1c1f5b8e01",
                "altcha": solve(json.loads(challenge)),
            },
        )
        assert status == 302

        # Failed logins are still throttled (in the process), the right one still works.
        other = Browser(server.url)
        assert login(other, "sam", PASSWORD) == 302
        guesses = [login(Browser(server.url), "sam", "wrong-guess") for _ in range(6)]
        assert guesses[:5] == [200] * 5
        assert guesses[5] == 429

        # An alert: the fan-out task, the sender's lock and the sends need no Redis.
        app_env.python(ALERT)
        wait_until(lambda: len(api.messages) >= SUBSCRIBERS, within=120, what="the alert")
        assert len({m.to for m in api.messages}) == SUBSCRIBERS

        reports = app_env.sql("SELECT count(*) FROM intake_report")[0][0]
        assert reports >= 3  # the text, the form, the alert's incident
        worker.kill()
        server.stop()

    errors = [(path, code) for b in (browser, anonymous, other) for path, code in b.statuses]
    assert not [e for e in errors if e[1] >= 500], errors
    assert " 500 " not in app_env.log("web")
    # The fallbacks did the counting: Redis really was gone.
    assert "counting in this process" in app_env.log("web")

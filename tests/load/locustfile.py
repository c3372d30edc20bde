"""Locust users for the load test (tests/load/run.py starts the server and this file).

Three kinds of traffic, against a loopback server only:
- Twilio delivering texts to the signed SMS webhook (most of the load);
- neighbours filling in the public report form (GET, then POST with its CSRF token and,
  when the page carries an ALTCHA challenge, the solved proof of work in ``altcha``);
- dispatchers logged in to the console: the page, and the live event stream.

The load balancer terminates TLS in production, so every request says
``X-Forwarded-Proto: https``; cookies are marked Secure for that reason and are sent
by hand over the loopback's plain HTTP.

Settings come from the environment: RR_LOAD_TOKEN (the Twilio auth token the server
checks), RR_LOAD_PUBLIC_URL (its RR_PUBLIC_URL), RR_LOAD_SESSION (a dispatcher's
session cookie, from a login before the run), RR_LOAD_RATE (requests a second per
webhook user; 0: as fast as it can).
"""

from __future__ import annotations

import itertools
import os
import random
import re
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from locust import HttpUser, between, constant, constant_throughput, task
from twilio.request_validator import RequestValidator

TOKEN = os.environ.get("RR_LOAD_TOKEN", "load-test-auth-token-0123456789")
PUBLIC_URL = os.environ.get("RR_LOAD_PUBLIC_URL", "https://hotline.example.org")
RATE = float(os.environ.get("RR_LOAD_RATE", "0"))
HTTPS = {"X-Forwarded-Proto": "https"}
ZONE = ZoneInfo(os.environ.get("RR_TIME_ZONE", "America/Los_Angeles"))
VALIDATOR = RequestValidator(TOKEN)
_sids = itertools.count()
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
SUBMISSION_INPUT = re.compile(r'name="submission" value="([^"]*)"')
TEXTS = [
    "ICE agents at International Blvd and 35th Ave, two vans",
    "Agentes de inmigración en la calle 23 y Foothill, tres carros",
    "Unmarked cars outside the laundromat on Fruitvale",
    "Hay agentes preguntando por documentos en la parada del autobús",
]


def _cookies(user: HttpUser) -> dict[str, str]:
    """The Secure cookies the client holds, as a header (see the module docstring)."""
    jar = user.client.cookies
    pairs = [f"{c.name}={c.value}" for c in jar]
    return {"Cookie": "; ".join(pairs)} if pairs else {}


class TwilioWebhook(HttpUser):
    # Every user beyond the fixed neighbour and dispatchers.
    weight = 1
    wait_time = constant_throughput(RATE) if RATE > 0 else constant(0)

    @task
    def text_the_hotline(self) -> None:
        path = "/hooks/twilio/sms"
        sid = f"SMload{os.getpid():06d}{next(_sids):020d}"
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": "ACload",
            "From": f"+1510555{random.randint(0, 9999):04d}",
            "To": "+15105550000",
            "Body": random.choice(TEXTS),
            "NumMedia": "0",
        }
        signature = VALIDATOR.compute_signature(PUBLIC_URL + path, params)
        with self.client.post(
            path,
            data=params,
            headers={**HTTPS, "X-Twilio-Signature": signature},
            name="POST /hooks/twilio/sms",
            catch_response=True,
        ) as response:
            if response.status_code != 200 or "<Response>" not in response.text:
                response.failure(f"status {response.status_code}")


def solve_altcha(challenge: dict[str, Any]) -> str | None:
    """The ``altcha`` field for a challenge from ``/report/challenge/``, solved as the
    widget solves it (the v2 protocol of the ``altcha`` library)."""
    import altcha

    parsed = altcha.Challenge.from_dict(challenge)
    solution = altcha.solve_challenge(parsed, timeout=30)
    if solution is None:
        return None
    return str(altcha.Payload(parsed, solution).to_base64())


class Neighbour(HttpUser):
    fixed_count = 1
    wait_time = between(0.5, 1.5)

    @task
    def report_on_the_web_form(self) -> None:
        page = self.client.get("/report/?lang=en", headers=HTTPS, name="GET /report/")
        csrf = CSRF_INPUT.search(page.text)
        if page.status_code != 200 or csrf is None:
            return
        submission = SUBMISSION_INPUT.search(page.text)
        form = {
            "csrfmiddlewaretoken": csrf.group(1),
            "text": random.choice(TEXTS),
            "location_text": "International Blvd and 35th Ave",
            # The form reads a local time in the network's zone (RR_TIME_ZONE).
            "observed_at": (datetime.now(ZONE) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"),
            "submission": submission.group(1) if submission else str(uuid.uuid4()),
        }
        challenge = self.client.get(
            "/report/challenge/", headers=HTTPS, name="GET /report/challenge/"
        )
        solved = solve_altcha(challenge.json()) if challenge.status_code == 200 else None
        if solved is not None:
            form["altcha"] = solved
        with self.client.post(
            "/report/?lang=en",
            data=form,
            headers={**HTTPS, **_cookies(self), "Referer": PUBLIC_URL + "/report/"},
            name="POST /report/",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code not in {200, 302, 303}:
                response.failure(f"status {response.status_code}")


class Dispatcher(HttpUser):
    fixed_count = 2
    wait_time = between(1, 2)

    def on_start(self) -> None:
        # tests/load/run.py logged in through the login page before the run.
        self.client.cookies.set("sessionid", os.environ["RR_LOAD_SESSION"])
        # A console opens its live stream as it loads: every dispatcher reads it at
        # least once, whatever the random choice of tasks gives in a short run.
        self.live_stream()

    @task(3)
    def console(self) -> None:
        with self.client.get(
            "/console/",
            headers={**HTTPS, **_cookies(self)},
            name="GET /console/",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")

    @task(1)
    def live_stream(self) -> None:
        """Open the event stream and read its first message, as EventSource would."""
        with self.client.get(
            "/console/events/",
            headers={**HTTPS, **_cookies(self), "Accept": "text/event-stream"},
            name="GET /console/events/ (first bytes)",
            stream=True,
            timeout=10,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
                return
            first = next(response.iter_content(chunk_size=None), b"")
            if not first.startswith(b"retry:"):
                response.failure("the stream did not start")
            response.close()

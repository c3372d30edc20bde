"""Drive the voice webhooks as Twilio would: signed requests, TwiML answers parsed."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.test import Client

from conftest import post_twilio

ENTRY = "/hooks/twilio/voice"


@dataclass
class TwiML:
    root: ET.Element

    @classmethod
    def parse(cls, response: Any) -> TwiML:
        assert response.status_code == 200, response.content
        assert response["Content-Type"].startswith("application/xml")
        root = ET.fromstring(response.content)  # noqa: S314 - our own server's TwiML
        assert root.tag == "Response"
        return cls(root)

    def verbs(self) -> list[str]:
        return [child.tag for child in self.root]

    def find(self, tag: str) -> ET.Element:
        found = self.root.find(tag)
        assert found is not None, f"no <{tag}> in {self.verbs()}"
        return found

    def says(self) -> list[tuple[str, str]]:
        """(language, text) of every <Say>, inside a <Gather> too."""
        return [(say.get("language", ""), say.text or "") for say in self.root.iter("Say")]

    def text(self) -> str:
        return " ".join(text for _language, text in self.says())


def path_of(url: str) -> str:
    """The path and query of an absolute URL the TwiML names, checked to be ours."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == settings.RR_PUBLIC_URL
    return parts.path + ("?" + parts.query if parts.query else "")


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def call_params(sid: str, caller: str = "+15105550123", **more: str) -> dict[str, str]:
    params = {
        "CallSid": sid,
        "AccountSid": "ACtest",
        "From": caller,
        "To": "+15105550000",
        "Direction": "inbound",
        "CallStatus": "ringing",
    }
    params.update(more)
    return params


class Caller:
    """One caller, following the TwiML they are given."""

    def __init__(self, client: Client, sid: str = "CA1", number: str = "+15105550123") -> None:
        self.client = client
        self.sid = sid
        self.number = number

    def post(self, url_or_path: str, **params: str) -> Any:
        path = path_of(url_or_path) if "://" in url_or_path else url_or_path
        return post_twilio(self.client, path, call_params(self.sid, self.number, **params))

    def dial(self) -> TwiML:
        return TwiML.parse(self.post(ENTRY))

    def press(self, twiml: TwiML, digits: str) -> TwiML:
        return TwiML.parse(self.post(twiml.find("Gather").get("action", ""), Digits=digits))

    def say(self, twiml: TwiML, words: str) -> TwiML:
        return TwiML.parse(self.post(twiml.find("Gather").get("action", ""), SpeechResult=words))

    def no_input(self, twiml: TwiML) -> TwiML:
        return TwiML.parse(self.post(twiml.find("Redirect").text or ""))

    def hold(self, twiml: TwiML) -> TwiML:
        return TwiML.parse(self.post(twiml.find("Enqueue").get("waitUrl", "")))

    def leave_queue(self, twiml: TwiML, result: str) -> TwiML:
        return TwiML.parse(self.post(twiml.find("Enqueue").get("action", ""), QueueResult=result))

    def record(self, twiml: TwiML, sid: str = "RE1", seconds: str = "12") -> tuple[TwiML, Any]:
        record = twiml.find("Record")
        url = f"https://api.twilio.com/2010-04-01/Accounts/ACtest/Recordings/{sid}"
        done = TwiML.parse(
            self.post(
                record.get("action", ""),
                RecordingSid=sid,
                RecordingUrl=url,
                RecordingDuration=seconds,
                Digits="#",
            )
        )
        callback = self.post(
            record.get("recordingStatusCallback", ""),
            RecordingSid=sid,
            RecordingUrl=url,
            RecordingDuration=seconds,
            RecordingStatus="completed",
        )
        return done, callback

    def hang_up(self, duration: str = "30") -> Any:
        return self.post(f"{ENTRY}/status", CallStatus="completed", CallDuration=duration)


class DispatcherPhone:
    """A dispatcher's phone that the hotline rang (a leg)."""

    def __init__(self, client: Client, leg: Any) -> None:
        self.client = client
        self.leg = leg

    def _post(self, step: str, **params: str) -> Any:
        path = f"{ENTRY}/{step}?call={self.leg.call.uuid}&leg={self.leg.uuid}"
        base = {"CallSid": f"CAleg{self.leg.pk}", "AccountSid": "ACtest", "To": "+1510"}
        base.update(params)
        return post_twilio(self.client, path, base)

    def pick_up(self) -> TwiML:
        return TwiML.parse(self._post("leg-answer", CallStatus="in-progress"))

    def press(self, digits: str) -> TwiML:
        return TwiML.parse(self._post("leg-accept", Digits=digits))

    def status(self, status: str) -> Any:
        return self._post("leg-status", CallStatus=status)

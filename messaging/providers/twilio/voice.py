"""The voice hotline on Twilio: TwiML for the flow's verbs, and the calls the hotline
places to dispatchers' phones."""

from __future__ import annotations

import base64
import re
import urllib.request
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from twilio.base.exceptions import TwilioRestException
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from calls import script
from messaging.providers import ProviderUnavailable
from messaging.providers.twilio.client import TWILIO_API, delete_resource, make_client

VOICE_PATH = "/hooks/twilio/voice"
RECORDING_TYPE = "audio/mpeg"
RECORDING_SID = re.compile(r"RE\w{1,62}")


def step_url(step: script.Step) -> str:
    query = {"call": step.call}
    if step.leg:
        query["leg"] = step.leg
    return f"{settings.RR_PUBLIC_URL}{VOICE_PATH}/{step.name}?{urlencode(query)}"


def _absolute(url: str) -> str:
    return url if "://" in url else f"{settings.RR_PUBLIC_URL}{url}"


def _spoken(parent: VoiceResponse | Gather, verb: script.Say | script.Play | script.Pause) -> None:
    if isinstance(verb, script.Say):
        if verb.speaker:
            parent.say(verb.text, language=verb.voice, voice=verb.speaker)
        else:
            parent.say(verb.text, language=verb.voice)
    elif isinstance(verb, script.Play):
        parent.play(_absolute(verb.url))
    else:
        parent.pause(length=verb.seconds)


def _gather(verb: script.Gather) -> Gather:
    options: dict[str, Any] = {
        "action": step_url(verb.action),
        "method": "POST",
        "num_digits": 1,
        "timeout": verb.timeout,
        "action_on_empty_result": False,
    }
    if verb.speech_voice:
        options.update(
            input="dtmf speech",
            language=verb.speech_voice,
            speech_timeout="auto",
            hints=", ".join(verb.hints),
        )
    else:
        options["input"] = "dtmf"
    gather = Gather(**options)
    for prompt in verb.prompts:
        _spoken(gather, prompt)
    return gather


def _record(response: VoiceResponse, verb: script.Record) -> None:
    response.record(
        action=step_url(verb.action),
        method="POST",
        max_length=verb.max_seconds,
        finish_on_key="#",
        play_beep=True,
        trim="trim-silence",
        recording_status_callback=step_url(verb.status),
        recording_status_callback_method="POST",
        recording_status_callback_event="completed",
    )


def _append(response: VoiceResponse, verb: script.Verb) -> None:
    if isinstance(verb, script.Say | script.Play | script.Pause):
        _spoken(response, verb)
    elif isinstance(verb, script.Gather):
        response.append(_gather(verb))
    elif isinstance(verb, script.Enqueue):
        response.enqueue(
            verb.queue,
            action=step_url(verb.action),
            method="POST",
            wait_url=step_url(verb.wait),
            wait_url_method="POST",
        )
    elif isinstance(verb, script.DialQueue):
        # A short timeout: if the caller has gone, the queue is empty and <Dial> would
        # wait in silence for the next one to join.
        dial = Dial(action=step_url(verb.done), method="POST", timeout=verb.timeout)
        dial.queue(verb.queue, url=step_url(verb.bridge), method="POST")
        response.append(dial)
    elif isinstance(verb, script.Record):
        _record(response, verb)
    elif isinstance(verb, script.Redirect):
        response.redirect(step_url(verb.to), method="POST")
    elif isinstance(verb, script.Leave):
        response.leave()
    else:
        response.hangup()


def render(verbs: script.Script) -> str:
    """The TwiML document for a list of the flow's verbs."""
    response = VoiceResponse()
    for verb in verbs:
        _append(response, verb)
    return str(response)


class TwilioVoice:
    name = "twilio"

    def __init__(self) -> None:
        self.client = make_client()

    def ring(
        self, *, to: str, answer: script.Step, status: script.Step, timeout_seconds: int
    ) -> str:
        try:
            call = self.client.calls.create(
                to=to,
                from_=settings.RR_HOTLINE_NUMBER,
                url=step_url(answer),
                method="POST",
                status_callback=step_url(status),
                status_callback_method="POST",
                status_callback_event=["ringing", "answered", "completed"],
                timeout=timeout_seconds,
            )
        except TwilioRestException as exc:
            raise ProviderUnavailable(f"Twilio refused the call ({exc.status}).") from exc
        return str(call.sid)

    def hang_up(self, *, sid: str, picked_up: bool) -> None:
        # "canceled" stops a call that is queued or ringing, "completed" one in progress;
        # a phone may have picked up before we knew, so the second follows a refusal.
        statuses = ["completed"] if picked_up else ["canceled", "completed"]
        for status in statuses:
            try:
                self.client.calls(sid).update(status=status)
                return
            except TwilioRestException as exc:
                if exc.status == 404:
                    return
                if exc.status != 400 or status == statuses[-1]:
                    raise ProviderUnavailable(
                        f"Twilio refused the hang-up ({exc.status})."
                    ) from exc

    def delete_queue(self, *, sid: str) -> None:
        delete_resource(self.client.queues(sid), "a queue")

    def fetch_recording(self, *, reference: str) -> tuple[bytes, str]:
        if not reference.startswith(TWILIO_API + "/"):
            raise ProviderUnavailable("The recording is not on Twilio's API.")
        url = reference + ".mp3"
        if settings.TWILIO_API_BASE:
            url = settings.TWILIO_API_BASE.rstrip("/") + url[len(TWILIO_API) :]
        # urlopen also follows file: and ftp: URLs; a mistyped TWILIO_API_BASE must not
        # send the account's credentials, or read a local file, anywhere but over HTTP.
        if urlsplit(url).scheme not in {"https", "http"}:
            raise ProviderUnavailable("TWILIO_API_BASE must be an http(s) URL.")
        credentials = f"{settings.TWILIO_ACCOUNT_SID}:{settings.TWILIO_AUTH_TOKEN}"
        request = urllib.request.Request(  # noqa: S310 - https to Twilio, or a test stand-in
            url,
            headers={"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()},
        )
        try:
            # The scheme is checked above (http or https only), hence noqa and nosec.
            with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310  # nosec B310
                return response.read(), response.headers.get("Content-Type", RECORDING_TYPE)
        except OSError as exc:
            raise ProviderUnavailable("Twilio could not be reached for the recording.") from exc

    def delete_recording(self, *, reference: str) -> None:
        # The reference is the recording's API address; its last part is the sid.
        sid = reference.rstrip("/").rsplit("/", 1)[-1].removesuffix(".json")
        if not reference.startswith(TWILIO_API + "/") or not RECORDING_SID.fullmatch(sid):
            raise ProviderUnavailable("The recording is not on Twilio's API.")
        delete_resource(self.client.recordings(sid), "a recording")

    def delete_call(self, *, sid: str) -> None:
        delete_resource(self.client.calls(sid), "a call")

"""The test phone's call mode: call the hotline and play the dispatchers' phones, offline.

The console provider rings no real phone. Here the caller's side walks the same flow
as a Twilio call (``calls.flow``), with buttons for the keypad; a dispatcher's phone
that "rings" is a ``CallLeg`` row, and the page plays it too. Each side keeps the
script its phone is playing in the session, starting at the verb that waits for the
person holding it, so every button can be checked against what the hotline offers
right now: a stale or forged form changes nothing.

Like the rest of the test phone, every view is a 404 unless the console provider is
active.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from calls import flow
from calls.models import LIVE_LEG_STATES, Call, CallLeg, CallState, LegState
from calls.script import (
    DialQueue,
    Enqueue,
    Gather,
    Hangup,
    Leave,
    Pause,
    Play,
    Record,
    Redirect,
    Say,
    Script,
    Step,
    Verb,
)
from messaging.providers.console import views
from messaging.providers.console.views import PROVIDER, View, console_provider_only

CALLER_KEY = "test_phone_call"
PHONES_KEY = "test_phone_phones"
PAGE = "messaging/test_phone.html"
KEYS = "1234567890"
LOG_LINES = 40
# A script that only ever redirects would otherwise loop; a real phone would too.
REDIRECTS = 10
RECORDING_SECONDS = 5
SPEECH_LENGTH = 200
PHONES_SHOWN = 20
FOCUS_ID = re.compile(r"^(call-status|phones-heading|phone-[0-9a-f-]{36})$")


class Refused(Exception):
    """A button that does not fit the call as it is now; nothing was changed."""


# --- scripts in the session ----------------------------------------------------------

VERB_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (Say, Play, Pause, Gather, Enqueue, DialQueue, Record, Redirect, Leave, Hangup)
}


def dump_verb(verb: Verb) -> dict[str, Any]:
    """A verb as plain data for the session: its type's name and its fields."""
    data: dict[str, Any] = {"verb": type(verb).__name__}
    for item in dataclasses.fields(verb):
        value = getattr(verb, item.name)
        if isinstance(value, Step):
            value = dataclasses.asdict(value)
        elif item.name == "prompts":
            value = [dump_verb(prompt) for prompt in value]
        elif isinstance(value, list):
            value = list(value)
        data[item.name] = value
    return data


def load_verb(data: dict[str, Any]) -> Verb:
    cls = VERB_TYPES[data["verb"]]
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        if item.name not in data:
            continue
        value = data[item.name]
        if hints[item.name] is Step:
            value = Step(**value)
        elif item.name == "prompts":
            value = [load_verb(prompt) for prompt in value]
        values[item.name] = value
    return cast(Verb, cls(**values))


def dump_script(verbs: list[Verb]) -> list[dict[str, Any]]:
    return [dump_verb(verb) for verb in verbs]


def load_script(data: Any) -> list[Verb]:
    return [load_verb(item) for item in data]


@dataclass
class CallLog:
    """What a phone heard and did, newest last, numbered so the page can append."""

    lines: list[dict[str, str | int]] = field(default_factory=list)
    next: int = 1

    def add(self, kind: str, text: str, *, lang: str = "", who: str = "", audio: str = "") -> None:
        self.lines.append(
            {"n": self.next, "kind": kind, "text": text, "lang": lang, "who": who, "audio": audio}
        )
        self.next += 1
        del self.lines[:-LOG_LINES]

    def hear(self, verb: Say | Play, *, who: str = "") -> None:
        if isinstance(verb, Say):
            self.add("hotline", verb.text, lang=verb.voice, who=who)
        else:
            self.add("hotline", _("(a recorded prompt)"), audio=verb.url, who=who)

    def dump(self) -> dict[str, Any]:
        return {"lines": self.lines, "next": self.next}

    @classmethod
    def load(cls, data: Any) -> CallLog:
        return cls(lines=list(data["lines"]), next=int(data["next"]))


@dataclass
class CallerPhone:
    """The caller's side of one simulated call."""

    call: str  # the Call's uuid
    sid: str  # the console provider's call id
    # What the phone is doing: from the verb that waits for the caller (a Gather, the
    # queue, a recording) to the end. Empty once the call is over.
    script: list[Verb] = field(default_factory=list)
    # While in the queue: what the hold step answered last time it was asked.
    hold: list[Verb] = field(default_factory=list)
    connected_to: str = ""
    log: CallLog = field(default_factory=CallLog)

    @property
    def head(self) -> Verb | None:
        return self.script[0] if self.script else None

    @property
    def queue(self) -> Enqueue | None:
        head = self.head
        return head if isinstance(head, Enqueue) else None

    def dump(self) -> dict[str, Any]:
        return {
            "call": self.call,
            "sid": self.sid,
            "script": dump_script(self.script),
            "hold": dump_script(self.hold),
            "connected_to": self.connected_to,
            "log": self.log.dump(),
        }

    @classmethod
    def load(cls, data: Any) -> CallerPhone | None:
        if not data:
            return None
        try:
            return cls(
                call=str(data["call"]),
                sid=str(data["sid"]),
                script=load_script(data["script"]),
                hold=load_script(data["hold"]),
                connected_to=str(data.get("connected_to", "")),
                log=CallLog.load(data["log"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class DispatcherPhones:
    """The dispatchers' side: the script each answered phone is playing, by leg."""

    legs: dict[str, list[Verb]] = field(default_factory=dict)
    log: CallLog = field(default_factory=CallLog)

    def dump(self) -> dict[str, Any]:
        return {
            "legs": {leg: dump_script(verbs) for leg, verbs in self.legs.items()},
            "log": self.log.dump(),
        }

    @classmethod
    def load(cls, data: Any) -> DispatcherPhones:
        if not data:
            return cls()
        try:
            return cls(
                legs={str(leg): load_script(verbs) for leg, verbs in data["legs"].items()},
                log=CallLog.load(data["log"]),
            )
        except (AttributeError, KeyError, TypeError, ValueError):
            return cls()


def _caller(request: HttpRequest) -> CallerPhone | None:
    return CallerPhone.load(request.session.get(CALLER_KEY))


def _phones(request: HttpRequest) -> DispatcherPhones:
    return DispatcherPhones.load(request.session.get(PHONES_KEY))


def _save(request: HttpRequest, key: str, value: dict[str, Any]) -> None:
    """Store one side's state. The page keeps polling both sides while its user presses
    buttons, and Django saves a whole session at the end of each request; so the other
    side's state is read again from the store first, and a poll that overlaps a button
    press does not put back what the press replaced."""
    session = request.session
    other = PHONES_KEY if key == CALLER_KEY else CALLER_KEY
    stored = type(session)(session.session_key)
    fresh = stored.get(other)
    if fresh is None:
        session.pop(other, None)
    else:
        session[other] = fresh
    session[key] = value


# --- following the flow's steps ----------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What a phone sends with a step: keys pressed, words said, why it left the queue,
    the recording it made."""

    digits: str = ""
    speech: str = ""
    result: str = ""
    recording_sid: str = ""


def _recorded(step: Step, answer: Answer) -> Script:
    return flow.recorded(
        call_uuid=step.call,
        recording_sid=answer.recording_sid,
        reference=f"console:{answer.recording_sid}",
        seconds=str(RECORDING_SECONDS),
    )


def _recording(step: Step, answer: Answer) -> Script:
    # The recording's own callback, which Twilio sends beside the record action.
    flow.save_recording(
        call_uuid=step.call,
        recording_sid=answer.recording_sid,
        reference=f"console:{answer.recording_sid}",
        seconds=str(RECORDING_SECONDS),
        ready=True,
    )
    return []


# The same steps, with the same parameters, as Twilio's voice webhooks.
STEPS: dict[str, Callable[[Step, Answer], Script]] = {
    "language": lambda step, answer: flow.choose_language(
        call_uuid=step.call, digits=answer.digits, speech=answer.speech
    ),
    "hold": lambda step, answer: flow.hold(call_uuid=step.call),
    "bridge": lambda step, answer: flow.bridge(call_uuid=step.call),
    "hold-key": lambda step, answer: flow.hold_key(call_uuid=step.call, digits=answer.digits),
    "left-queue": lambda step, answer: flow.left_queue(call_uuid=step.call, result=answer.result),
    "recorded": _recorded,
    "recording": _recording,
    "leg-answer": lambda step, answer: flow.offer_to_dispatcher(leg_uuid=step.leg),
    "leg-accept": lambda step, answer: flow.dispatcher_pressed(
        leg_uuid=step.leg, digits=answer.digits
    ),
    "leg-dialled": lambda step, answer: flow.dispatcher_dialled(leg_uuid=step.leg),
}


def follow(step: Step, answer: Answer | None = None) -> Script:
    handler = STEPS.get(step.name)
    if handler is None:
        raise Refused(
            _("The hotline asked for a step the test phone does not know: %(step)s.")
            % {"step": step.name}
        )
    return handler(step, answer or Answer())


# --- the caller's phone ------------------------------------------------------------------


def play(phone: CallerPhone, verbs: Script) -> None:
    """Play a script to the caller until a verb waits for them or the call ends."""
    queue = list(verbs)
    redirects = 0
    while queue:
        verb = queue.pop(0)
        if isinstance(verb, Say | Play):
            phone.log.hear(verb)
        elif isinstance(verb, Gather):
            for prompt in verb.prompts:
                if not isinstance(prompt, Pause):
                    phone.log.hear(prompt)
            phone.script = [verb, *queue]
            return
        elif isinstance(verb, Record):
            phone.script = [verb, *queue]
            phone.log.add("event", _("Recording: speak after the tone."))
            return
        elif isinstance(verb, Enqueue):
            phone.script = [verb, *queue]
            phone.log.add("event", _("On hold."))
            # A phone asks for the hold music as soon as it joins the queue.
            play_hold(phone, verb, follow(verb.wait))
            return
        elif isinstance(verb, Redirect):
            redirects += 1
            if redirects > REDIRECTS:
                break
            queue = list(follow(verb.to))
        elif isinstance(verb, Hangup):
            break
        # Pause passes; Leave and DialQueue mean nothing outside the queue.
    phone.log.add("event", _("The hotline hung up."))
    end_call(phone)


def play_hold(phone: CallerPhone, queue: Enqueue, verbs: Script) -> None:
    """Play what the hold step answered to a caller in the queue. The flow may take
    them out of it (Leave): then the queue's action follows, as on a real call."""
    pending = list(verbs)
    hold: list[Verb] = []
    redirects = 0
    while pending:
        verb = pending.pop(0)
        if isinstance(verb, Say | Play | Gather):
            hold.append(verb)
        elif isinstance(verb, Redirect):
            redirects += 1
            if redirects > REDIRECTS:
                break
            pending, hold = list(follow(verb.to)), []
        elif isinstance(verb, Leave | Hangup):
            for heard in hold:
                if isinstance(heard, Say | Play):
                    phone.log.hear(heard)
            phone.hold = []
            if isinstance(verb, Hangup):
                phone.log.add("event", _("The hotline hung up."))
                end_call(phone)
                return
            phone.log.add("event", _("You leave the queue."))
            play(phone, follow(queue.action, Answer(result="leave")))
            return
    phone.hold = hold


def end_call(phone: CallerPhone) -> None:
    """The call's final status, as the provider reports it when either side hangs up."""
    call = Call.objects.filter(uuid=phone.call).first()
    duration = ""
    if call is not None:
        duration = str(max(0, int((timezone.now() - call.started_at).total_seconds())))
    flow.call_status(
        provider=PROVIDER, provider_sid=phone.sid, status="completed", duration=duration
    )
    phone.script, phone.hold = [], []


def hang_up(phone: CallerPhone, call: Call) -> None:
    """The caller hangs up, wherever they are in the call."""
    phone.log.add("you", _("You hang up."))
    if phone.queue is not None and call.state == CallState.WAITING:
        flow.left_queue(call_uuid=phone.call, result="hangup")
    taken = []
    if call.state == CallState.CONNECTED:
        taken = [str(leg.uuid) for leg in call.legs.filter(state=LegState.ACCEPTED)]
    end_call(phone)
    for leg in taken:
        # The dispatcher's end of the connection goes with the caller's.
        follow(Step("leg-dialled", phone.call, leg))
        flow.leg_status(leg_uuid=leg, status="completed")


def catch_up(phone: CallerPhone, call: Call) -> None:
    """What changed on the caller's line since the page last asked: a dispatcher took
    the call, the other side hung up, or the hold step has something new to say."""
    if not phone.script:
        return
    if call.state == CallState.ENDED:
        phone.log.add("event", _("The call ended."))
        phone.script, phone.hold = [], []
        return
    if call.state == CallState.CONNECTED:
        if not phone.connected_to:
            phone.connected_to = _dispatcher_name(call)
            phone.log.add("event", _("Connected to %(name)s.") % {"name": phone.connected_to})
        phone.hold = []
        return
    queue = phone.queue
    if queue is not None:
        play_hold(phone, queue, follow(queue.wait))


def _dispatcher_name(call: Call) -> str:
    return call.answered_by.display_name if call.answered_by else _("a dispatcher")


def offered_gather(phone: CallerPhone, step: str) -> Gather | None:
    """The Gather waiting for the caller's answer under this step name, if any: the
    script's own, or the one the hold step plays."""
    head = phone.head
    if isinstance(head, Gather) and head.action.name == step:
        return head
    if phone.queue is not None:
        for verb in phone.hold:
            if isinstance(verb, Gather) and verb.action.name == step:
                return verb
    return None


# --- the dispatchers' phones -------------------------------------------------------------


def _name(leg: CallLeg) -> str:
    return leg.line.user.display_name


def play_phone(phones: DispatcherPhones, leg: CallLeg, verbs: Script) -> None:
    """Play a script on a dispatcher's phone until it waits for a key, connects to the
    caller, or hangs up."""
    key, name = str(leg.uuid), _name(leg)
    pending = list(verbs)
    redirects = 0
    while pending:
        verb = pending.pop(0)
        if isinstance(verb, Say | Play):
            phones.log.hear(verb, who=name)
        elif isinstance(verb, Gather):
            heard: list[Say | Play] = []
            for prompt in verb.prompts:
                # The offer is said twice for a phone's speaker; once is enough to read.
                if isinstance(prompt, Say | Play) and prompt not in heard:
                    heard.append(prompt)
                    phones.log.hear(prompt, who=name)
            phones.legs[key] = [verb, *pending]
            return
        elif isinstance(verb, DialQueue):
            # The caller's side runs this just before the two are connected.
            follow(verb.bridge)
            phones.legs[key] = [verb]
            phones.log.add("event", _("Connected to the caller."), who=name)
            return
        elif isinstance(verb, Redirect):
            redirects += 1
            if redirects > REDIRECTS:
                break
            pending = list(follow(verb.to))
        elif isinstance(verb, Hangup):
            break
    phones.legs.pop(key, None)
    flow.leg_status(leg_uuid=key, status="completed")
    phones.log.add("event", _("Hung up."), who=name)


def shown_legs() -> list[CallLeg]:
    """The console provider's dispatcher phones that ring, or are on a call."""
    return list(
        CallLeg.objects.filter(call__provider=PROVIDER)
        .filter(
            Q(state__in=LIVE_LEG_STATES)
            | Q(state=LegState.ACCEPTED, call__state=CallState.CONNECTED)
        )
        .select_related("call", "line__user")
        .order_by("created_at")[:PHONES_SHOWN]
    )


def _prune(phones: DispatcherPhones) -> None:
    """Forget the scripts of phones that no longer ring or talk."""
    keep = {str(leg.uuid) for leg in shown_legs()}
    phones.legs = {key: verbs for key, verbs in phones.legs.items() if key in keep}


# --- what the page shows -----------------------------------------------------------------


@dataclass
class CallerPanel:
    mode: str  # idle, menu, hold, record, connected or ended
    number: str
    phone: CallerPhone | None = None
    call: Call | None = None
    gather: Gather | None = None
    hold_prompts: list[Say | Play] = field(default_factory=list)
    can_say_nothing: bool = False
    error: str = ""
    focus: str = ""

    @property
    def lines(self) -> list[dict[str, str | int]]:
        return self.phone.log.lines if self.phone else []

    @property
    def call_id(self) -> str:
        return self.phone.call if self.phone else ""

    @property
    def is_open(self) -> bool:
        return self.mode not in {"idle", "ended"}

    @property
    def dispatcher(self) -> str:
        if self.phone and self.phone.connected_to:
            return self.phone.connected_to
        return _dispatcher_name(self.call) if self.call else ""


def caller_panel(request: HttpRequest, *, error: str = "", focus: str = "") -> CallerPanel:
    number = views._number(request)
    phone = _caller(request)
    call = (
        Call.objects.select_related("answered_by").filter(uuid=phone.call).first()
        if phone
        else None
    )
    panel = CallerPanel(mode="idle", number=number, phone=phone, call=call, error=error)
    panel.focus = focus
    if phone is None or call is None:
        panel.phone = None
        return panel
    head = phone.head
    if not phone.script or call.state == CallState.ENDED:
        panel.mode = "ended"
    elif call.state == CallState.CONNECTED:
        panel.mode = "connected"
    elif isinstance(head, Gather):
        panel.mode = "menu"
        panel.gather = head
        panel.can_say_nothing = len(phone.script) > 1
    elif isinstance(head, Record):
        panel.mode = "record"
    elif isinstance(head, Enqueue):
        panel.mode = "hold"
        for verb in phone.hold:
            if isinstance(verb, Gather):
                panel.gather = verb
                panel.hold_prompts.extend(p for p in verb.prompts if isinstance(p, Say | Play))
            elif isinstance(verb, Say | Play):
                panel.hold_prompts.append(verb)
    else:
        panel.mode = "ended"
    return panel


@dataclass
class PhoneCard:
    leg: CallLeg
    name: str
    mode: str  # ringing, offer or connected
    gather: Gather | None = None
    focused: bool = False

    @property
    def state(self) -> str:
        if self.mode == "connected":
            return _("Connected to the caller")
        if self.mode == "offer":
            return _("Picked up: the hotline offers the call")
        return str(self.leg.get_state_display())

    @property
    def can_ring_out(self) -> bool:
        return self.leg.state in {LegState.DIALING, LegState.RINGING}

    @property
    def prompts(self) -> list[Say | Play]:
        """What the offer says, once (a phone's speaker hears it twice)."""
        shown: list[Say | Play] = []
        for prompt in self.gather.prompts if self.gather else []:
            if isinstance(prompt, Say | Play) and prompt not in shown:
                shown.append(prompt)
        return shown


@dataclass
class PhonesPanel:
    cards: list[PhoneCard]
    lines: list[dict[str, str | int]]
    error: str = ""
    focus: str = ""


def phones_panel(request: HttpRequest, *, error: str = "", focus: str = "") -> PhonesPanel:
    phones = _phones(request)
    cards = []
    for leg in shown_legs():
        stored = phones.legs.get(str(leg.uuid), [])
        head = stored[0] if stored else None
        card = PhoneCard(leg=leg, name=_name(leg), mode="ringing")
        if leg.state == LegState.ACCEPTED:
            card.mode = "connected"
        elif leg.state == LegState.PICKED_UP and isinstance(head, Gather):
            card.mode, card.gather = "offer", head
        # Otherwise ringing; or picked up on another page, where its offer was heard.
        card.focused = focus == f"phone-{leg.uuid}"
        cards.append(card)
    return PhonesPanel(cards=cards, lines=phones.log.lines, error=error, focus=focus)


class CallMode:
    """The call mode's part of the test phone page, read by its template."""

    def __init__(self, request: HttpRequest, *, error: str = "", side: str = "", focus: str = ""):
        self.request = request
        self.error = error
        self.side = side
        self.focus = focus if FOCUS_ID.match(focus) else ""

    @cached_property
    def caller(self) -> CallerPanel:
        error = self.error if self.side == "caller" else ""
        return caller_panel(self.request, error=error, focus=self.focus)

    @cached_property
    def phones(self) -> PhonesPanel:
        error = self.error if self.side == "phones" else ""
        return phones_panel(self.request, error=error, focus=self.focus)

    @property
    def keys(self) -> str:
        return KEYS


def _attach(request: HttpRequest, mode: CallMode) -> None:
    # The test phone's SMS view renders the page; the call mode rides on the request,
    # which every template can read.
    cast(Any, request).test_phone_call = mode


def with_call_mode(view: View) -> View:
    """The test phone page with the call mode beside the text messages."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        _attach(request, CallMode(request, focus=request.GET.get("focus", "")))
        return view(request, *args, **kwargs)

    return wrapper


def _done(focus: str) -> HttpResponse:
    return redirect(reverse("test-phone:phone") + f"?focus={focus}")


def _refuse(request: HttpRequest, side: str, message: str) -> HttpResponse:
    focus = "call-status" if side == "caller" else "phones-heading"
    _attach(request, CallMode(request, error=message, side=side, focus=focus))
    return render(request, PAGE, views._context(request), status=400)


def test_phone_view(view: View) -> View:
    """The test phone's rules: only with the console provider, for staff signed in."""
    return console_provider_only(
        login_required(permission_required("messaging.use_test_phone", raise_exception=True)(view))
    )


# --- the caller's buttons ----------------------------------------------------------------


def _current(request: HttpRequest) -> tuple[CallerPhone, Call]:
    """The call this form was for, if it is still the test phone's call and open."""
    phone = _caller(request)
    posted = request.POST.get("call", "")
    if phone is None or not posted:
        raise Refused(_("This test call is over or your session has expired. Call again."))
    if posted != phone.call:
        raise Refused(
            _("That button belongs to an earlier call. The page now shows the current one.")
        )
    call = Call.objects.select_related("answered_by").filter(uuid=phone.call).first()
    if call is None:
        raise Refused(_("This test call is over or your session has expired. Call again."))
    if not phone.script or call.state == CallState.ENDED:
        raise Refused(_("This call has ended. Call again to start a new one."))
    return phone, call


def _caller_action(action: Callable[[HttpRequest], None]) -> View:
    @functools.wraps(action)
    def view(request: HttpRequest) -> HttpResponse:
        try:
            action(request)
        except (Refused, flow.UnknownCall) as exc:
            message = (
                str(exc) if isinstance(exc, Refused) else _("The hotline does not know this call.")
            )
            return _refuse(request, "caller", message)
        return _done("call-status")

    return test_phone_view(require_POST(view))


@_caller_action
def call_start(request: HttpRequest) -> None:
    """Call the hotline from the test phone's number. A call still open on this page
    is hung up first."""
    number = views._number(request)
    previous = _caller(request)
    if previous is not None and previous.script:
        call = Call.objects.filter(uuid=previous.call).first()
        if call is not None and call.is_open:
            hang_up(previous, call)
    sid = f"CONCA{uuid.uuid4().hex}"
    verbs = flow.answer_call(provider=PROVIDER, provider_sid=sid, caller=number)
    call = Call.objects.get(provider=PROVIDER, provider_sid=sid)
    phone = CallerPhone(call=str(call.uuid), sid=sid)
    phone.log.add("you", _("You call the hotline from %(number)s.") % {"number": number})
    play(phone, verbs)
    _save(request, CALLER_KEY, phone.dump())


@_caller_action
def call_answer(request: HttpRequest) -> None:
    """A key, spoken words, or silence, for the Gather the caller hears now."""
    phone, call = _current(request)
    if call.state == CallState.CONNECTED:
        raise Refused(_("You are talking to a dispatcher; the hotline's menu is over."))
    gather = offered_gather(phone, request.POST.get("step", ""))
    if gather is None:
        raise Refused(
            _("The hotline no longer offers that choice. The page shows what it asks now.")
        )
    digits = request.POST.get("digits", "")
    speech = request.POST.get("speech", "").strip()
    queue = phone.queue
    if request.POST.get("silence"):
        if gather is not phone.head or len(phone.script) < 2:
            raise Refused(_("The hotline is waiting for a key here."))
        phone.log.add("you", _("You say nothing."))
        play(phone, phone.script[1:])
    elif digits:
        if len(digits) != 1 or digits not in KEYS:
            raise Refused(_("Press one key from 0 to 9."))
        phone.log.add("you", _("You press %(key)s.") % {"key": digits})
        answer = follow(gather.action, Answer(digits=digits))
        if queue is not None and gather is not phone.head:
            play_hold(phone, queue, answer)
        else:
            play(phone, answer)
    elif speech:
        if not gather.speech_voice:
            raise Refused(_("The hotline does not listen for words here; press a key."))
        if len(speech) > SPEECH_LENGTH:
            raise Refused(_("Say it in at most %(count)s characters.") % {"count": SPEECH_LENGTH})
        phone.log.add(
            "you", _("You say: “%(words)s”") % {"words": speech}, lang=gather.speech_voice
        )
        play(phone, follow(gather.action, Answer(speech=speech)))
    else:
        raise Refused(_("Press a key, type what you say, or choose Say nothing."))
    _save(request, CALLER_KEY, phone.dump())


@_caller_action
def call_record(request: HttpRequest) -> None:
    """Finish the voicemail the caller is recording."""
    phone, _call = _current(request)
    head = phone.head
    if not isinstance(head, Record) or request.POST.get("step") != head.action.name:
        raise Refused(_("The hotline is not recording a message now."))
    recording = Answer(recording_sid=f"CONRE{uuid.uuid4().hex}")
    phone.log.add(
        "you",
        _("You leave a message (%(seconds)s seconds).") % {"seconds": RECORDING_SECONDS},
    )
    answer = follow(head.action, recording)
    follow(head.status, recording)
    play(phone, answer)
    _save(request, CALLER_KEY, phone.dump())


@_caller_action
def call_hang_up(request: HttpRequest) -> None:
    phone, call = _current(request)
    hang_up(phone, call)
    _save(request, CALLER_KEY, phone.dump())


@test_phone_view
@require_POST
def call_poll(request: HttpRequest) -> HttpResponse:
    """The caller's side, asked again every few seconds while a call is open: the hold
    step plays, a dispatcher may have answered, the other side may have hung up. The
    session is written only when something changed."""
    phone = _caller(request)
    if phone is not None and request.POST.get("call") == phone.call:
        call = Call.objects.select_related("answered_by").filter(uuid=phone.call).first()
        if call is not None:
            before = phone.dump()
            try:
                catch_up(phone, call)
            except (Refused, flow.UnknownCall):
                phone = None
            if phone is not None and phone.dump() != before:
                _save(request, CALLER_KEY, phone.dump())
    if request.headers.get("X-Requested-With") != "fetch":
        # The "Keep waiting" button, without the page's script.
        return _done("call-status")
    return render(request, "messaging/test_phone_call.html", {"mode": CallMode(request)})


# --- the dispatchers' buttons ------------------------------------------------------------


def _leg(leg_id: str) -> CallLeg:
    try:
        key = uuid.UUID(leg_id)
    except ValueError:
        key = None
    leg = (
        CallLeg.objects.select_related("call", "line__user")
        .filter(uuid=key, call__provider=PROVIDER)
        .first()
        if key
        else None
    )
    if leg is None:
        raise Refused(_("There is no such dispatcher phone on the test phone."))
    return leg


def _phone_action(action: Callable[[HttpRequest, CallLeg, DispatcherPhones], None]) -> View:
    @functools.wraps(action)
    def view(request: HttpRequest, leg_id: str) -> HttpResponse:
        try:
            leg = _leg(leg_id)
            phones = _phones(request)
            action(request, leg, phones)
        except (Refused, flow.UnknownCall) as exc:
            message = (
                str(exc) if isinstance(exc, Refused) else _("The hotline does not know this call.")
            )
            return _refuse(request, "phones", message)
        _prune(phones)
        _save(request, PHONES_KEY, phones.dump())
        still_shown = any(shown.pk == leg.pk for shown in shown_legs())
        return _done(f"phone-{leg.uuid}" if still_shown else "phones-heading")

    return test_phone_view(require_POST(view))


@_phone_action
def phone_answer(request: HttpRequest, leg: CallLeg, phones: DispatcherPhones) -> None:
    """The dispatcher picks up: the hotline offers the call."""
    if leg.state not in LIVE_LEG_STATES:
        raise Refused(_("This phone is no longer ringing."))
    phones.log.add("event", _("Picked up."), who=_name(leg))
    play_phone(phones, leg, follow(Step("leg-answer", str(leg.call.uuid), str(leg.uuid))))


@_phone_action
def phone_press(request: HttpRequest, leg: CallLeg, phones: DispatcherPhones) -> None:
    """A key on a dispatcher's phone, for the offer it hears (1 takes the call)."""
    stored = phones.legs.get(str(leg.uuid), [])
    head = stored[0] if stored else None
    if (
        leg.state != LegState.PICKED_UP
        or not isinstance(head, Gather)
        or head.action.name != request.POST.get("step")
    ):
        raise Refused(_("This phone is not waiting for a key. Answer it first."))
    digits = request.POST.get("digits", "")
    if len(digits) != 1 or digits not in KEYS:
        raise Refused(_("Press one key from 0 to 9."))
    phones.log.add("event", _("Pressed %(key)s.") % {"key": digits}, who=_name(leg))
    play_phone(phones, leg, follow(head.action, Answer(digits=digits)))


@_phone_action
def phone_ring_out(request: HttpRequest, leg: CallLeg, phones: DispatcherPhones) -> None:
    """Nobody picks up: the phone stops ringing by itself."""
    if leg.state not in {LegState.DIALING, LegState.RINGING}:
        raise Refused(_("This phone is no longer ringing."))
    flow.leg_status(leg_uuid=str(leg.uuid), status="no-answer")
    phones.log.add("event", _("Rang out without an answer."), who=_name(leg))


@_phone_action
def phone_hang_up(request: HttpRequest, leg: CallLeg, phones: DispatcherPhones) -> None:
    """The dispatcher hangs up: before taking the call it goes on to others; on the
    call, the caller's line ends too."""
    if leg.state not in LIVE_LEG_STATES and not (
        leg.state == LegState.ACCEPTED and leg.call.state == CallState.CONNECTED
    ):
        raise Refused(_("This phone is not on a call."))
    key, call = str(leg.uuid), leg.call
    stored = phones.legs.pop(key, [])
    if leg.state != LegState.ACCEPTED:
        flow.leg_status(leg_uuid=key, status="completed")
        phones.log.add("event", _("Hung up."), who=_name(leg))
        return
    # The caller's queue action runs when the connection ends; then their line ends.
    flow.left_queue(call_uuid=str(call.uuid), result="bridged")
    flow.call_status(provider=PROVIDER, provider_sid=call.provider_sid, status="completed")
    head = stored[0] if stored else None
    done = head.done if isinstance(head, DialQueue) else Step("leg-dialled", str(call.uuid), key)
    play_phone(phones, leg, follow(done))


@test_phone_view
@require_GET
def phones(request: HttpRequest) -> HttpResponse:
    """The dispatchers' phones alone, which the page refreshes while it is open."""
    return render(request, "messaging/test_phone_phones.html", {"mode": CallMode(request)})

"""What a caller or a dispatcher's phone hears next, independent of the provider.

The voice flow (calls.flow) answers every step with a list of verbs; the Twilio
provider renders them as TwiML, the test phone as buttons and text. Steps are named,
not addressed: each provider maps a ``Step`` to its own URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Step:
    """The next request the provider makes: a named step of the flow, for one call and,
    for a dispatcher's phone, one leg."""

    name: str
    call: str
    leg: str = ""


@dataclass(frozen=True)
class Say:
    text: str
    voice: str  # a BCP-47 tag for the text-to-speech engine, e.g. "es-US"
    # The provider's named voice for that language (e.g. "Polly.Lupe"); "" for its default.
    speaker: str = ""


@dataclass(frozen=True)
class Play:
    url: str


@dataclass(frozen=True)
class Pause:
    seconds: int


@dataclass(frozen=True)
class Gather:
    """Wait for a key (and, with ``speech_voice``, a spoken answer) while the prompts
    play; the answer goes to ``action``. Without an answer the next verb runs."""

    action: Step
    prompts: list[Say | Play | Pause]
    timeout: int = 5
    speech_voice: str = ""
    hints: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Enqueue:
    """Hold the caller in their own queue until a dispatcher takes them (``wait`` is
    asked what to play meanwhile) or the flow makes them leave (``action`` follows)."""

    queue: str
    wait: Step
    action: Step


@dataclass(frozen=True)
class DialQueue:
    """Connect this phone (a dispatcher's) to the caller waiting in ``queue``.
    ``bridge`` runs on the caller's side just before they are connected; ``done`` when
    this phone's part ends (or the caller was already gone)."""

    queue: str
    bridge: Step
    done: Step
    timeout: int = 5


@dataclass(frozen=True)
class Record:
    action: Step
    status: Step
    max_seconds: int


@dataclass(frozen=True)
class Redirect:
    to: Step


@dataclass(frozen=True)
class Leave:
    """Take the caller out of the queue; the Enqueue's action follows."""


@dataclass(frozen=True)
class Hangup:
    pass


Verb = Say | Play | Pause | Gather | Enqueue | DialQueue | Record | Redirect | Leave | Hangup
Script = list[Verb]

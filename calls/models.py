"""The voice hotline: calls, the dispatchers' phones that ring for them, and what the
caller hears."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.fields import EncryptedTextField


class DispatcherLine(models.Model):
    """The phone a dispatcher takes hotline calls on. On shift by their own say-so
    (console, SMS ON/OFF) or during a scheduled shift they have not turned off."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dispatcher_line"
    )
    phone = EncryptedTextField()
    phone_hash = models.CharField(max_length=64, unique=True)
    active = models.BooleanField(default=True)
    on_shift = models.BooleanField(default=False)
    on_shift_changed_at = models.DateTimeField(null=True, blank=True)
    # OFF during a scheduled shift holds until that shift ends.
    off_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"dispatcher line {self.pk}"


class DispatcherShift(models.Model):
    line = models.ForeignKey(DispatcherLine, on_delete=models.CASCADE, related_name="shifts")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()

    class Meta:
        ordering = ["starts_at"]
        indexes = [models.Index(fields=["starts_at", "ends_at"], name="dispatcher_shift_time_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(starts_at__lt=models.F("ends_at")),
                name="dispatcher_shift_ordered",
            )
        ]

    def __str__(self) -> str:
        return f"dispatcher shift {self.starts_at:%Y-%m-%d %H:%M}"


class CallState(models.TextChoices):
    MENU = "menu", _("Choosing a language")
    WAITING = "waiting", _("Waiting for a dispatcher")
    CONNECTED = "connected", _("With a dispatcher")
    VOICEMAIL = "voicemail", _("Leaving a message")
    ENDED = "ended", _("Ended")


class CallOutcome(models.TextChoices):
    PENDING = "", _("In progress")
    ANSWERED = "answered", _("Answered")
    VOICEMAIL = "voicemail", _("Voicemail")
    ABANDONED = "abandoned", _("Hung up before an answer")


class Call(models.Model):
    """One call to the hotline, from the first ring to the hang-up."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    provider = models.CharField(max_length=16)
    provider_sid = models.CharField(max_length=64)
    caller = EncryptedTextField(blank=True, default="")
    # Indexed with started_at (Meta): a number's calls, and its calls in the last
    # minutes (calls.limits).
    caller_hash = models.CharField(max_length=64, blank=True)
    language = models.CharField(max_length=8, blank=True)
    state = models.CharField(max_length=12, choices=CallState.choices, default=CallState.MENU)
    outcome = models.CharField(
        max_length=12, choices=CallOutcome.choices, default=CallOutcome.PENDING, blank=True
    )
    menu_attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    # When the caller was actually connected to the dispatcher who took the call: only
    # then is the call answered (a caller who hangs up in between is called back).
    bridged_at = models.DateTimeField(null=True, blank=True)
    # The hold loop's last request: a waiting call that stopped asking has hung up.
    last_heard_at = models.DateTimeField(null=True, blank=True)
    # The provider's queue for this call, deleted when the call ends.
    queue_sid = models.CharField(max_length=64, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="answered_calls",
    )
    # Why the caller was sent to leave a message (for the console and the statistics).
    voicemail_reason = models.CharField(max_length=16, blank=True)

    recording_sid = models.CharField(max_length=64, null=True, blank=True, unique=True)
    # The provider's address of the recording: enough to fetch the caller's voice.
    recording_reference = EncryptedTextField(blank=True, default="")
    recording_seconds = models.PositiveIntegerField(null=True, blank=True)
    transcript = EncryptedTextField(blank=True, default="")
    transcription_attempts = models.PositiveSmallIntegerField(default=0)

    report = models.ForeignKey(
        "intake.Report", null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    needs_callback = models.BooleanField(default=False)
    called_back_at = models.DateTimeField(null=True, blank=True)
    # When the provider's record of the call (it names the caller) was deleted through
    # its API (core.retention).
    provider_deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["state", "queued_at"], name="call_state_idx"),
            models.Index(fields=["needs_callback", "ended_at"], name="call_missed_idx"),
            models.Index(fields=["caller_hash", "started_at"], name="call_caller_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["provider", "provider_sid"], name="call_provider_sid"),
            models.CheckConstraint(
                condition=models.Q(state__in=[s.value for s in CallState]),
                name="call_state_valid",
            ),
            models.CheckConstraint(
                condition=~models.Q(state="connected") | models.Q(answered_by__isnull=False),
                name="call_connected_has_dispatcher",
            ),
        ]

    def __str__(self) -> str:
        return f"call {self.uuid}"

    @property
    def queue_name(self) -> str:
        # One queue per call: the dispatcher who accepts dequeues exactly this caller.
        return f"call-{self.uuid.hex}"

    @property
    def is_open(self) -> bool:
        return self.state != CallState.ENDED


class LegState(models.TextChoices):
    DIALING = "dialing", _("Dialling")
    RINGING = "ringing", _("Ringing")
    PICKED_UP = "picked_up", _("Picked up, not yet accepted")
    ACCEPTED = "accepted", _("Took the call")
    DECLINED = "declined", _("Did not take it")
    MISSED = "missed", _("No answer")
    CANCELLED = "cancelled", _("Stopped ringing")
    ENDED = "ended", _("Ended")


LIVE_LEG_STATES = frozenset({LegState.DIALING, LegState.RINGING, LegState.PICKED_UP})
FINAL_LEG_STATES = frozenset(
    {LegState.DECLINED, LegState.MISSED, LegState.CANCELLED, LegState.ENDED}
)


class CallLeg(models.Model):
    """One dispatcher's phone ringing for one call."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="legs")
    line = models.ForeignKey(DispatcherLine, on_delete=models.CASCADE, related_name="legs")
    provider_sid = models.CharField(max_length=64, null=True, blank=True, unique=True)
    state = models.CharField(max_length=12, choices=LegState.choices, default=LegState.DIALING)
    created_at = models.DateTimeField(default=timezone.now)
    picked_up_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["line", "state"], name="call_leg_line_idx")]
        constraints = [
            # A dispatcher is rung at most once for a call, unless the ringing was
            # stopped before they could answer (another took it, then dropped).
            models.UniqueConstraint(
                fields=["call", "line"],
                condition=~models.Q(state="cancelled"),
                name="call_leg_once",
            ),
            # Whatever the timing, one dispatcher takes a call.
            models.UniqueConstraint(
                fields=["call"], condition=models.Q(state="accepted"), name="call_leg_one_taker"
            ),
        ]

    def __str__(self) -> str:
        return f"call leg {self.uuid}"


class CallbackOutcome(models.TextChoices):
    REACHED = "reached", _("Reached the caller")
    LEFT_MESSAGE = "left_message", _("Left a message")
    NO_ANSWER = "no_answer", _("No answer")


class Callback(models.Model):
    """A dispatcher calling back a missed call."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="callbacks")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=16, choices=CallbackOutcome.choices)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"call back {self.pk}"


class PromptKey(models.TextChoices):
    GREETING = "greeting", _("Greeting")
    MENU = "menu", _("Language choice")
    HOLD = "hold", _("Please hold")
    POSITION = "position", _("Place in line")
    LEAVE_OPTION = "leave_option", _("Offer to leave a message")
    VOICEMAIL = "voicemail", _("Leave a message")
    NO_ONE = "no_one", _("No one can answer")
    THANKS = "thanks", _("Thanks after a message")
    NO_MESSAGE = "no_message", _("No message heard")


class VoiceLanguage(models.Model):
    """A language the menu offers beyond the built-in ones, or settings for a built-in
    one (its key and voice). Languages without a translation need every prompt typed or
    recorded before the menu offers them."""

    code = models.CharField(max_length=8, unique=True)
    name = models.CharField(max_length=40, help_text=_("The language's own name, e.g. Português."))
    digit = models.PositiveSmallIntegerField(unique=True)
    voice = models.CharField(max_length=16, help_text=_("The text-to-speech language, e.g. pt-BR."))
    speaker = models.CharField(
        max_length=40,
        blank=True,
        help_text=_("The provider's voice for that language, e.g. Polly.Camila."),
    )
    spoken_names = models.CharField(
        max_length=200,
        blank=True,
        help_text=_("Words a caller may say to choose it, comma-separated."),
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["digit"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(digit__gte=1, digit__lte=8), name="voice_language_digit"
            )
        ]

    def __str__(self) -> str:
        return self.name


class VoicePrompt(models.Model):
    """A coordinator's own words (typed, or a recording) for one prompt in one language,
    in place of the built-in text."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    language = models.CharField(max_length=8)
    key = models.CharField(max_length=16, choices=PromptKey.choices)
    text = models.TextField(blank=True, max_length=600)
    audio = models.FileField(upload_to="voice-prompts/", blank=True)
    audio_type = models.CharField(max_length=40, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["language", "key"], name="voice_prompt_once"),
            models.CheckConstraint(
                condition=~models.Q(text="") | ~models.Q(audio=""), name="voice_prompt_content"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.language} {self.key}"

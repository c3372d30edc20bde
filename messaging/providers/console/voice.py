"""The console voice provider: no telephone network. Dispatchers' phones "ring" on
the test phone page, which plays both sides of a call."""

from __future__ import annotations

import io
import math
import struct
import uuid
import wave

from calls.script import Step

SAMPLE_RATE = 8000


def test_recording() -> bytes:
    """What a test-phone voicemail sounds like: a short two-tone chime, so the
    dispatcher's player has something to play offline."""
    frames = bytearray()
    for tone, seconds in ((660.0, 0.25), (880.0, 0.35)):
        for i in range(int(SAMPLE_RATE * seconds)):
            sample = int(9000 * math.sin(2 * math.pi * tone * i / SAMPLE_RATE))
            frames += struct.pack("<h", sample)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(bytes(frames))
    return buffer.getvalue()


class ConsoleVoice:
    name = "console"

    def ring(self, *, to: str, answer: Step, status: Step, timeout_seconds: int) -> str:
        # The leg's row is the ringing phone: the test phone lists legs that ring.
        return f"CONCL{uuid.uuid4().hex}"

    def hang_up(self, *, sid: str, picked_up: bool) -> None:
        # Nothing to stop: the leg's row already says it was cancelled.
        return None

    def delete_queue(self, *, sid: str) -> None:
        return None

    def fetch_recording(self, *, reference: str) -> tuple[bytes, str]:
        return test_recording(), "audio/wav"

    def delete_recording(self, *, reference: str) -> None:
        # The test phone's voicemails are generated, never stored.
        return None

    def delete_call(self, *, sid: str) -> None:
        return None

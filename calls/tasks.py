from __future__ import annotations

from django_tasks import task

from calls import routing


@task()
def ring_dispatchers() -> None:
    """Ring every free dispatcher on shift for the calls waiting longest."""
    routing.ring_waiting_calls()


@task()
def stop_dispatcher_phones(leg_ids: list[int]) -> None:
    routing.stop_ringing(leg_ids)


@task()
def transcribe_voicemail(call_id: int) -> None:
    from calls import transcription

    transcription.transcribe_call(call_id=call_id)


@task()
def delete_call_queue(queue_sid: str) -> None:
    """A call's own queue at the provider, no longer needed once the call ended."""
    from messaging.providers import active_voice_provider

    active_voice_provider().delete_queue(sid=queue_sid)

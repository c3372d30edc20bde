"""Who rings for a waiting call: every free dispatcher on shift, at once."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from accounts.models import Role
from calls.models import (
    LIVE_LEG_STATES,
    Call,
    CallLeg,
    CallState,
    DispatcherLine,
    DispatcherShift,
    LegState,
)
from calls.script import Step
from core.locks import one_local_writer, serialize

logger = logging.getLogger(__name__)

RING_LOCK = "calls.ring"


def lines_on_shift(now: datetime | None = None) -> QuerySet[DispatcherLine]:
    """Dispatchers taking calls now: by their own say-so, or on a scheduled shift they
    have not turned off."""
    moment = now or timezone.now()
    scheduled = DispatcherShift.objects.filter(
        line=OuterRef("pk"), starts_at__lte=moment, ends_at__gt=moment
    )
    return DispatcherLine.objects.filter(
        active=True,
        user__is_active=True,
        user__role__in=[Role.DISPATCHER, Role.COORDINATOR],
    ).filter(
        Q(on_shift=True)
        | (Exists(scheduled) & (Q(off_until__isnull=True) | Q(off_until__lte=moment)))
    )


def busy_line_ids() -> set[int]:
    """Lines ringing for a call, or on one."""
    return set(
        CallLeg.objects.filter(
            Q(state__in=LIVE_LEG_STATES)
            | Q(state=LegState.ACCEPTED, call__state=CallState.CONNECTED)
        ).values_list("line_id", flat=True)
    )


def tried_legs() -> QuerySet[CallLeg]:
    """Legs that gave their dispatcher a real chance at the call (a leg stopped because
    someone else took the call does not count)."""
    return CallLeg.objects.exclude(state=LegState.CANCELLED)


def untried_lines_on_shift(call: Call, now: datetime | None = None) -> QuerySet[DispatcherLine]:
    return lines_on_shift(now).exclude(pk__in=tried_legs().filter(call=call).values("line_id"))


def assign_rings() -> list[int]:
    """Create a leg for every free dispatcher on shift, for the longest-waiting calls
    first (each free dispatcher rings for one call). Returns the new legs' ids, which
    the caller dials after the commit."""
    with one_local_writer(), transaction.atomic():
        serialize(RING_LOCK)
        # Locked, so a caller hanging up now cannot get new legs after theirs were
        # cancelled; a call another writer holds is skipped until the next round.
        waiting = list(
            Call.objects.select_for_update(skip_locked=True)
            .filter(state=CallState.WAITING)
            .order_by("queued_at")[:50]
        )
        if not waiting:
            return []
        free = list(lines_on_shift().exclude(pk__in=busy_line_ids()).order_by("pk"))
        if not free:
            return []
        tried: dict[int, set[int]] = {}
        for call_id, line_id in (
            tried_legs().filter(call__in=waiting).values_list("call_id", "line_id")
        ):
            tried.setdefault(call_id, set()).add(line_id)
        new: list[CallLeg] = []
        for call in waiting:
            candidates = [line for line in free if line.pk not in tried.get(call.pk, set())]
            if not candidates:
                continue
            new.extend(CallLeg(call=call, line=line) for line in candidates)
            free = [line for line in free if line not in candidates]
            if not free:
                break
        CallLeg.objects.bulk_create(new)
        # bulk_create sets primary keys on PostgreSQL and SQLite alike.
        return [leg.pk for leg in new]


def dial(leg_ids: list[int]) -> None:
    """Ring the phones of new legs through the provider. A failure marks the leg missed;
    the caller's hold loop then sends them to leave a message if no one else can."""
    from messaging.providers import active_voice_provider

    if not leg_ids:
        return
    provider = active_voice_provider()
    # A caller who left between the legs' creation and now needs no phone rung.
    CallLeg.objects.filter(pk__in=leg_ids, state=LegState.DIALING).exclude(
        call__state=CallState.WAITING
    ).update(state=LegState.CANCELLED, ended_at=timezone.now())
    legs = CallLeg.objects.filter(pk__in=leg_ids, state=LegState.DIALING).select_related(
        "call", "line"
    )
    for leg in legs:
        try:
            sid = provider.ring(
                to=leg.line.phone,
                answer=Step("leg-answer", str(leg.call.uuid), str(leg.uuid)),
                status=Step("leg-status", str(leg.call.uuid), str(leg.uuid)),
                timeout_seconds=settings.RR_CALL_RING_SECONDS,
            )
        except Exception:
            logger.exception("Could not ring a dispatcher's phone.")
            CallLeg.objects.filter(pk=leg.pk, state=LegState.DIALING).update(
                state=LegState.MISSED, ended_at=timezone.now()
            )
            continue
        # The id always: the phone's first callback may already have moved the state.
        CallLeg.objects.filter(pk=leg.pk).update(provider_sid=sid)
        CallLeg.objects.filter(pk=leg.pk, state=LegState.DIALING).update(state=LegState.RINGING)


def ring_waiting_calls() -> None:
    dial(assign_rings())


def stop_ringing(leg_ids: list[int]) -> None:
    """Hang up dispatcher phones that no longer need to ring (the call was taken, the
    caller left). Their rows were already marked cancelled."""
    from messaging.providers import active_voice_provider

    if not leg_ids:
        return
    provider = active_voice_provider()
    for sid, picked_up in CallLeg.objects.filter(
        pk__in=leg_ids, provider_sid__isnull=False
    ).values_list("provider_sid", "picked_up_at"):
        try:
            provider.hang_up(sid=str(sid), picked_up=picked_up is not None)
        except Exception:
            # The phone stops by itself when its ring time runs out.
            logger.exception("Could not stop a dispatcher's phone ringing.")


def cancel_live_legs(call: Call, *, keep: CallLeg | None = None) -> list[int]:
    """Mark the call's ringing legs cancelled (inside the caller's transaction) and
    return their ids for stop_ringing after the commit."""
    live = CallLeg.objects.filter(call=call, state__in=LIVE_LEG_STATES)
    if keep is not None:
        live = live.exclude(pk=keep.pk)
    ids = list(live.values_list("pk", flat=True))
    if ids:
        CallLeg.objects.filter(pk__in=ids).update(state=LegState.CANCELLED, ended_at=timezone.now())
    return ids


def after_commit_stop_and_ring(leg_ids: list[int]) -> None:
    """Stop the phones that no longer need to ring, then ring the freed dispatchers
    for whoever waits next; both after the commit, through the task queue."""
    from calls.tasks import ring_dispatchers, stop_dispatcher_phones

    if leg_ids:
        transaction.on_commit(lambda: stop_dispatcher_phones.enqueue(leg_ids=leg_ids))
    transaction.on_commit(ring_dispatchers.enqueue)

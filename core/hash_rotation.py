"""Every keyed-hash column, and how a rotation of RR_HASH_KEY reaches it.

Rotating the hash key: move the old ``RR_HASH_KEY`` to the front of
``RR_HASH_KEYS_PREVIOUS``, set a new one, restart, run ``manage.py rotate_hash_key``.

- Columns whose number is stored (encrypted) next to the hash, or one join away, are
  recomputed by the command from the decrypted number.
- ``OptOut.phone_hash`` has no stored number: a STOP must hold long after the number's
  other rows are purged. The command carries an opt-out forward when any row still
  holds its number (it adds the current-key row first and removes the old one last, so
  the joins of alerts and matching see the opt-out throughout); an opt-out whose number
  is held nowhere stays under the key it was made with. Such opt-outs keep working as
  long as that key stays in RR_HASH_KEYS_PREVIOUS: the next time the number texts in,
  or is written to, ``bring_forward`` moves its opt-out to the current key.
- ``Subscriber.code_hash`` (a confirmation code, 15 minutes) is checked under every key
  and never recomputed; rate-limit hashes live in the cache for their window only and
  simply start again.

``bring_forward`` is called where a number enters from outside (an inbound text or
call, a contact for an outgoing text, a responder's or dispatcher's phone, a web
sign-up): the rows that hold that number under a previous key are moved to the current
key at once, so lookups by the current hash find them while a rotation runs. Outside a
rotation (no previous keys) it does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import IntegrityError, models, transaction

from core import phones


@dataclass(frozen=True)
class HashColumn:
    """A column holding ``phones.phone_hash`` of a number."""

    label: str
    column: str
    # The number the hash was made from, or None when the row no longer holds it.
    number: Callable[[Any], str | None] | None
    related: tuple[str, ...] = ()
    # Moved to the current key as soon as its number is seen (lookups decide on it).
    brought_forward: bool = True

    @property
    def model(self) -> type[models.Model]:
        return apps.get_model(self.label)


def _attr(name: str) -> Callable[[Any], str | None]:
    def read(instance: Any) -> str | None:
        value = getattr(instance, name)
        return str(value) if value else None

    return read


def _contact_phone(instance: Any) -> str | None:
    contact = instance.contact
    return str(contact.phone) if contact is not None and contact.phone else None


# Every keyed-hash column of every app (grep for phone_hash / keyed_hash when adding one).
COLUMNS: list[HashColumn] = [
    HashColumn("messaging.Contact", "phone_hash", _attr("phone")),
    HashColumn("messaging.InboundMessage", "sender_hash", _attr("sender")),
    HashColumn(
        "messaging.OutboxMessage",
        "recipient_hash",
        _contact_phone,
        related=("contact",),
        brought_forward=False,  # history: the command recomputes it
    ),
    HashColumn("alerts.Subscriber", "phone_hash", _contact_phone, related=("contact",)),
    HashColumn("dispatch.Responder", "phone_hash", _attr("phone")),
    HashColumn("calls.DispatcherLine", "phone_hash", _attr("phone")),
    HashColumn("calls.Call", "caller_hash", _attr("caller"), brought_forward=False),
    HashColumn("intake.Report", "reporter_hash", _attr("reporter_contact"), brought_forward=False),
    HashColumn("messaging.OptOut", "phone_hash", None),
]
OPT_OUT = "messaging.OptOut"


def column(label: str) -> HashColumn:
    return next(c for c in COLUMNS if c.label == label)


def bring_forward(e164: str) -> int:
    """Move the rows holding ``e164`` under a previous hash key to the current one.
    Returns how many rows moved. Call inside the caller's transaction."""
    if not e164:
        return 0
    old = phones.previous_phone_hashes(e164)
    if not old:
        return 0
    new = phones.phone_hash(e164)
    moved = 0
    for spec in COLUMNS:
        if not spec.brought_forward:
            continue
        manager = spec.model._base_manager
        stale = manager.filter(**{f"{spec.column}__in": old})
        try:
            with transaction.atomic():
                moved += stale.update(**{spec.column: new})
        except IntegrityError:
            # A unique column already has a current-key row for the number (made during
            # the rotation). An opt-out is the same fact twice: keep one. Other tables
            # are left for the command, which reports the pair.
            if spec.label == OPT_OUT:
                moved += stale.delete()[0]
    return moved

"""Inbound SMS kept on local disk while the database is unreachable.

A signed webhook that cannot store its message appends it here and still answers, so
the provider does not retry into an outage and the sender hears back. Each message is
one file: encrypted with the field key (it holds a phone number and what they wrote),
written to a temporary name, fsync'd, renamed into place and the directory fsync'd, so
a crash leaves either the whole message or nothing. Names sort in arrival order.

``replay`` feeds the files through the normal path (``receive_sms``) in order once the
database answers again, and deletes each file only after its transaction committed. A
replay that dies between the commit and the delete meets the unique provider SID next
time and just deletes the file, as does a message the provider also delivered again
itself: each message is stored exactly once.

While files wait, new messages join the queue behind them (the webhook spools them too)
so a sender's STOP and START, or a report and its follow-up, keep their order.

The same path absorbs a surge larger than the database can take: when more than
RR_SMS_WEBHOOK_BACKLOG texts wait in this web process (``core.asgi.waiting``), the
webhook spools instead of storing, which costs a fraction of a transaction, and the
replayer stores the backlog behind it. The provider gets its answer without waiting
for the database (bench B1 measures how soon), and every text is still stored once, in
order: a spooled text reserves its place first (``reserve``), so nothing that arrives
after it can be stored before it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections
from django.utils import timezone

from core import crypto, phones
from messaging import accepted, router
from messaging.actions import MAX_BODY_CHARS, receive_sms
from messaging.selectors import is_opted_out

logger = logging.getLogger(__name__)

# What a database that is down, restarting or unreachable raises, on connecting or in
# the middle of a transaction.
OUTAGE_ERRORS = (OperationalError, InterfaceError)
SUFFIX = ".sms"
CORRUPT_DIR = "corrupt"
# How often the web process's replayer tries again while the database is still down.
RETRY_SECONDS = 1.0
# After an outage error, how long optional reads (the opt-out of a text queued behind the
# spool) are not tried: longer than the pool's timeout plus a replay attempt.
OUTAGE_MEMORY_SECONDS = 30.0


class SpoolFull(Exception):
    """The spool holds RR_SPOOL_MAX_MESSAGES messages: refuse, so the provider retries."""


@dataclass(frozen=True)
class SpooledMessage:
    provider: str
    provider_sid: str
    sender: str
    recipient: str
    body: str
    media_urls: list[str]
    received_at: datetime
    answered: str


@dataclass
class ReplayResult:
    stored: int = 0
    duplicates: int = 0
    corrupt: int = 0
    remaining: int = 0
    # The pass stopped at a place a webhook has reserved and is still writing.
    reserved: bool = False


def directory() -> Path:
    return Path(settings.RR_SPOOL_DIR)


def _context(name: str) -> str:
    # The file's name is bound into the ciphertext: a file renamed (reordered) or
    # copied over another fails to decrypt.
    return f"messaging.spool:{name}"


def _files() -> list[Path]:
    try:
        entries = list(os.scandir(directory()))
    except FileNotFoundError:
        return []
    return sorted(
        Path(entry.path)
        for entry in entries
        if entry.name.endswith(SUFFIX) and not entry.name.startswith(".")
    )


def count() -> int:
    """Messages waiting (a directory scan, without sorting)."""
    try:
        with os.scandir(directory()) as entries:
            return sum(1 for e in entries if e.name.endswith(SUFFIX) and not e.name.startswith("."))
    except FileNotFoundError:
        return 0


# The limit is a safety net, not an exact quota: the files are counted at most once a
# second (a scan of thousands of names for every text would slow the surge it absorbs),
# and again whenever the estimate reaches the limit.
COUNT_EVERY_SECONDS = 1.0
_estimate_lock = threading.Lock()
_estimate = (-math.inf, 0)  # (when counted, files then plus appended since)


def _about_full() -> bool:
    global _estimate  # noqa: PLW0603 - per-process estimate of the spool's size
    with _estimate_lock:
        counted_at, files = _estimate
        now = time.monotonic()
        if now - counted_at > COUNT_EVERY_SECONDS or files >= settings.RR_SPOOL_MAX_MESSAGES:
            counted_at, files = now, count()
        full = files >= settings.RR_SPOOL_MAX_MESSAGES
        _estimate = (counted_at, files + (0 if full else 1))
        return full


def pending() -> bool:
    """Whether any message waits (cheap: stops at the first file)."""
    try:
        with os.scandir(directory()) as entries:
            return any(e.name.endswith(SUFFIX) and not e.name.startswith(".") for e in entries)
    except FileNotFoundError:
        return False


_name_lock = threading.Lock()
_last_stamp = 0
_sequence = 0


def _next_name() -> str:
    """Wall-clock nanoseconds (never going back within this process), the process id
    and a per-process sequence: sorted names are arrival order."""
    global _last_stamp, _sequence  # noqa: PLW0603 - per-process ordering state
    with _name_lock:
        _last_stamp = max(time.time_ns(), _last_stamp + 1)
        _sequence += 1
        return f"{_last_stamp:020d}-{os.getpid():08d}-{_sequence:010d}{SUFFIX}"


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_directory(path: Path) -> None:
    """Create ``path`` (and missing parents) durably: a directory made just now is only
    on disk once its parent is fsync'd, or a power cut takes it and the message inside."""
    if path.is_dir():
        return
    missing: list[Path] = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
        _fsync_directory(folder.parent)


def append(
    *,
    provider: str,
    provider_sid: str,
    sender: str,
    recipient: str,
    body: str,
    media_urls: list[str],
    answered: str,
    received_at: datetime | None = None,
    reserved: Path | None = None,
) -> Path:
    """Write one message durably; returns its file. Raises SpoolFull at the limit.

    With ``reserved`` (from ``reserve``), the message takes that place in the order."""
    folder = directory()
    if reserved is None:
        _make_directory(folder)
        if _about_full():
            raise SpoolFull
        name = _next_name()
    else:
        name = reserved.name
    payload = json.dumps(
        {
            "provider": provider,
            "provider_sid": provider_sid,
            "sender": sender,
            "recipient": recipient,
            "body": body[:MAX_BODY_CHARS],
            "media_urls": media_urls,
            "received_at": (received_at or timezone.now()).isoformat(),
            "answered": answered,
        }
    ).encode()
    blob = crypto.encrypt_bytes(payload, context=_context(name))
    temporary = folder / f".{name}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(blob)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    final = folder / name
    os.rename(temporary, final)
    _fsync_directory(folder)
    return final


# An empty file is a place reserved in the order by a webhook still writing its message.
# One older than this belongs to a webhook that died before answering (the provider
# delivers that text again), and is removed.
RESERVATION_SECONDS = 30.0


def reserve() -> Path:
    """Take the next place in the order at once, before the slower work of a spooled
    text (its answer, encryption, fsync), so that from this moment ``pending`` sends
    every later text behind it. ``append(reserved=...)`` fills it; ``release`` gives it
    up. Raises SpoolFull at the limit."""
    folder = directory()
    _make_directory(folder)
    if _about_full():
        raise SpoolFull
    path = folder / _next_name()
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return path


def release(reserved: Path) -> None:
    """Give up a reservation that will not be filled (only if still empty)."""
    with contextlib.suppress(FileNotFoundError):
        if reserved.stat().st_size == 0:
            reserved.unlink()


def _is_reservation(path: Path) -> bool | None:
    """True for a reservation still being written, False for a message, None for an
    abandoned reservation (removed here) or a file that is gone."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    if info.st_size:
        return False
    if time.time() - info.st_mtime < RESERVATION_SECONDS:
        return True
    logger.warning("Removing a spool place reserved by a webhook that did not finish.")
    release(path)
    return None


def read(path: Path) -> SpooledMessage:
    """Decrypt one file. Raises ValueError for a file that is damaged or not ours."""
    try:
        data = crypto.decrypt_bytes(path.read_bytes(), context=_context(path.name))
        fields = json.loads(data)
        return SpooledMessage(
            provider=str(fields["provider"]),
            provider_sid=str(fields["provider_sid"]),
            sender=str(fields["sender"]),
            recipient=str(fields["recipient"]),
            body=str(fields["body"]),
            media_urls=[str(url) for url in fields["media_urls"]],
            received_at=datetime.fromisoformat(fields["received_at"]),
            answered=str(fields["answered"]),
        )
    except (crypto.DecryptionError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"Spool file {path.name} cannot be read.") from error


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    _fsync_directory(path.parent)


def _quarantine(path: Path) -> None:
    # Kept (still encrypted) for an operator rather than deleted: it may be a report.
    target = path.parent / CORRUPT_DIR
    _make_directory(target)
    os.rename(path, target / path.name)
    _fsync_directory(target)
    _fsync_directory(path.parent)


@contextlib.contextmanager
def _replay_lock() -> Iterator[bool]:
    """One replayer per spool across processes, or the order would interleave."""
    folder = directory()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(folder / ".replay.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def replay(limit: int | None = None) -> ReplayResult | None:
    """Store the waiting messages in arrival order (at most ``limit`` in this pass);
    stop at the first sign the database is still down, or at a place a webhook is
    still writing. None when another replayer is running."""
    with _replay_lock() as ours:
        if not ours:
            return None
        result = ReplayResult()
        files = _files()
        if limit is not None:
            files = files[:limit]
        for index, path in enumerate(files):
            state = _is_reservation(path)
            if state is None:
                continue
            if state:
                # The order waits for it: everything after it arrived later.
                result.reserved = True
                result.remaining = len(files) - index
                return result
            try:
                message = read(path)
            except ValueError:
                logger.error("Spool file %s cannot be read; moved to %s/.", path.name, CORRUPT_DIR)
                _quarantine(path)
                result.corrupt += 1
                continue
            except FileNotFoundError:
                continue
            try:
                created = _store_spooled(message)
            except OUTAGE_ERRORS:
                _drop_broken_connection()
                result.remaining = len(files) - index
                logger.warning("Database unreachable; %d spooled messages wait.", result.remaining)
                return result
            except Exception:
                # One message the normal path refuses must not hold up the others.
                logger.exception("Spooled message %s failed; moved to %s/.", path.name, CORRUPT_DIR)
                _quarantine(path)
                result.corrupt += 1
                continue
            _remove(path)
            if created:
                result.stored += 1
            else:
                result.duplicates += 1
        return result


def _store_spooled(message: SpooledMessage) -> bool:
    """Store a spooled text through the normal path, or, when the webhook accepts
    first, join the accepted texts (so the worker keeps one order for both); whether it
    was new."""
    fields: dict[str, Any] = {
        "provider": message.provider,
        "provider_sid": message.provider_sid,
        "sender": message.sender,
        "recipient": message.recipient,
        "body": message.body,
        "media_urls": message.media_urls,
        "received_at": message.received_at,
        "answered": message.answered,
    }
    if settings.RR_SMS_ACCEPT_FIRST:
        return accepted.accept(**fields)
    return receive_sms(**fields).created


_last_outage = -math.inf


def _database_lately_up() -> bool:
    """No outage seen in this process for OUTAGE_MEMORY_SECONDS: worth asking the
    database something optional. During an outage each attempt waits for the pool's
    timeout, which a text queued behind the spool must not."""
    return time.monotonic() - _last_outage > OUTAGE_MEMORY_SECONDS


def _drop_broken_connection() -> None:
    """After an outage error: remember it, and close a connection the outage broke so
    the next attempt opens a new one."""
    global _last_outage  # noqa: PLW0603 - per-process memory of the last outage
    _last_outage = time.monotonic()
    connection = connections["default"]
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()


def receive_or_spool(
    *,
    provider: str,
    provider_sid: str,
    sender: str,
    recipient: str,
    body: str,
    media_urls: list[str],
) -> str:
    """The webhook's way in: store and route the message (``receive_sms``) and return
    the reply; when the database is unreachable, or earlier messages still wait in the
    spool, append it there and return the answer that needs no database.

    Raises SpoolFull when it can be neither stored nor spooled."""
    database_down = False
    accept_first = settings.RR_SMS_ACCEPT_FIRST
    # Accepting costs one INSERT, so a backlog of webhooks is no reason to spool then.
    if not pending() and (accept_first or not backlogged()):
        try:
            if accept_first:
                accepted.accept(
                    provider=provider,
                    provider_sid=provider_sid,
                    sender=sender,
                    recipient=recipient,
                    body=body,
                    media_urls=media_urls,
                )
                return ""
            return receive_sms(
                provider=provider,
                provider_sid=provider_sid,
                sender=sender,
                recipient=recipient,
                body=body,
                media_urls=media_urls,
            ).reply
        except OUTAGE_ERRORS:
            logger.warning("Database unreachable; an inbound SMS goes to the spool.")
            _drop_broken_connection()
            database_down = True
    # Its place in the order first: from now on, later texts queue behind it.
    place = reserve()
    try:
        sender_hash = phones.phone_hash(phones.normalize_sender(sender))
        answered = router.offline_reply(body[:MAX_BODY_CHARS].strip(), len(media_urls), sender_hash)
        if answered and not database_down and _database_lately_up() and _opted_out(sender):
            # Queued behind the spool while the database answers: like the normal path,
            # a number that texted STOP gets no reply (carriers allow only the
            # confirmation).
            answered = ""
        append(
            provider=provider,
            provider_sid=provider_sid,
            sender=sender,
            recipient=recipient,
            body=body,
            media_urls=media_urls,
            answered=answered,
            reserved=place,
        )
    except BaseException:
        release(place)
        raise
    start_replayer()
    return answered


# Between passes of REPLAY_BATCH files, outside the replay lock, a replayer whose
# process is past its webhook backlog waits (at most GIVE_WAY_AT_MOST): answering the
# provider in time comes first, and what is safe on disk can be stored in a gap.
REPLAY_BATCH = 50
GIVE_WAY_SECONDS = 0.005
GIVE_WAY_AT_MOST = 1.0
# How the ASGI wrapper names the SMS webhook (rapidresponse/asgi.py counts this path).
WEBHOOK_PATH = "/hooks/twilio/sms"


def _waiting_webhooks() -> int:
    from core.asgi import waiting

    return waiting(WEBHOOK_PATH)


def _give_way_to_the_webhook() -> None:
    until = time.monotonic() + GIVE_WAY_AT_MOST
    while backlogged(asking=False) and time.monotonic() < until:
        time.sleep(GIVE_WAY_SECONDS)


def backlogged(*, asking: bool = True) -> bool:
    """More SMS webhooks in this process than RR_SMS_WEBHOOK_BACKLOG (0: never) besides
    the one ``asking``."""
    limit = settings.RR_SMS_WEBHOOK_BACKLOG
    return bool(limit) and _waiting_webhooks() - int(asking) > limit


def _opted_out(sender: str) -> bool:
    """Whether ``sender`` opted out, as far as the database can say right now (a
    database that fails again does not stop the message being spooled)."""
    try:
        return is_opted_out(phones.phone_hash(phones.normalize_sender(sender)))
    except OUTAGE_ERRORS:
        _drop_broken_connection()
        return False


_replayer_lock = threading.Lock()
_replayer: threading.Thread | None = None
_again = False


def start_replayer() -> None:
    """Replay in a thread of this process until the spool is empty (the web process
    runs one after spooling, and at start when files wait)."""
    global _replayer, _again  # noqa: PLW0603 - one replayer thread per process
    with _replayer_lock:
        if _replayer is not None and _replayer.is_alive():
            _again = True
            return
        _again = False
        _replayer = threading.Thread(target=_replay_until_empty, name="spool-replay", daemon=True)
        _replayer.start()


def _replay_until_empty() -> None:
    global _replayer, _again  # noqa: PLW0603 - one replayer thread per process
    try:
        while True:
            while pending():
                _give_way_to_the_webhook()
                try:
                    result = replay(limit=REPLAY_BATCH)
                except Exception:
                    logger.exception("Replaying the spool failed; trying again.")
                    result = None
                # Straight on while the database takes them (a surge keeps adding
                # files); a moment for a place still being written; longer while the
                # database is down or another process replays.
                if result is not None and result.reserved:
                    time.sleep(GIVE_WAY_SECONDS)
                elif result is None or result.remaining:
                    time.sleep(RETRY_SECONDS)
            with _replayer_lock:
                if not _again:
                    _replayer = None
                    return
                _again = False
    finally:
        connections.close_all()


def release_quarantined() -> int:
    """Put files set aside as unreadable or failed back in the queue (after fixing a
    key or a bug); returns how many. Their names keep their place in the order."""
    folder = directory() / CORRUPT_DIR
    if not folder.is_dir():
        return 0
    moved = 0
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        os.rename(path, directory() / path.name)
        moved += 1
    if moved:
        _fsync_directory(directory())
    return moved


def start_replayer_if_pending() -> None:
    if pending():
        start_replayer()

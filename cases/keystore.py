"""The case key store: one data key per case, kept outside the main database.

Each case's data (the person's name, date of birth, A-number, contacts' phones, notes)
is encrypted with a random 256-bit key of its own. That key is stored only here, as a
file named by the case's ``key_ref`` under ``RR_CASE_KEYSTORE``, wrapped (encrypted)
by the current field key (``core.crypto``). The database never holds the case key, so
a database backup holds nothing that opens a case once its key file is gone:
destroying the file crypto-shreds the case everywhere, backups of the database
included.

The store is excluded from database backups and has its own, short backup rotation
(docs/SECURITY.md): a keystore backup older than the retention period is what would
still open a purged case. Losing the store loses every case: that is the trade-off.

Files are written to a temporary name, fsynced, renamed into place and the directory
fsynced, so a crash leaves either no key or a whole one. Destroying overwrites the file
before unlinking it (best effort: copy-on-write file systems and SSDs may keep old
blocks, which still need the field key to unwrap). Rewrapping and destroying hold an
exclusive lock on the store (``.lock``, flock), so a key rotation running beside the
retention purge never writes back a key the purge has just destroyed.
"""

from __future__ import annotations

import base64
import fcntl
import os
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from core import crypto

KEY_BYTES = 32
KEY_REF_PATTERN = re.compile(r"^[0-9a-f]{32}$")
SUFFIX = ".key"
LOCK_NAME = ".lock"


class CaseKeyMissing(crypto.DecryptionError):
    """The case's key is not in the store: destroyed on schedule, or the store is lost."""


def keystore_dir() -> Path:
    configured = getattr(settings, "RR_CASE_KEYSTORE", "") or ""
    path = Path(configured) if configured else Path(settings.VAR_DIR) / "case-keys"
    return path


def _ensure_dir() -> Path:
    path = keystore_dir()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _path(key_ref: str) -> Path:
    # fullmatch: "$" alone would also accept a reference ending in a newline.
    if not KEY_REF_PATTERN.fullmatch(key_ref):
        raise ValueError("Not a case key reference.")
    return keystore_dir() / f"{key_ref}{SUFFIX}"


@contextmanager
def _store_lock() -> Iterator[None]:
    """Exclusive across processes and threads (each call opens its own descriptor)."""
    fd = os.open(_ensure_dir() / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _context(key_ref: str) -> str:
    return f"case-key.{key_ref}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(key_ref: str, wrapped: str) -> None:
    directory = _ensure_dir()
    final = _path(key_ref)
    temporary = directory / f".{key_ref}.{secrets.token_hex(4)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, wrapped.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, final)
    _fsync_dir(directory)


_cache: dict[str, tuple[tuple[int, int], bytes]] = {}
_cache_lock = threading.Lock()


def new_key() -> str:
    """Make and store a key for a new case; returns its reference."""
    key_ref = secrets.token_hex(16)
    wrapped = crypto.encrypt(
        base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii"),
        context=_context(key_ref),
    )
    _write(key_ref, wrapped)
    return key_ref


def _read_wrapped(key_ref: str) -> tuple[str, tuple[int, int]]:
    path = _path(key_ref)
    try:
        with path.open("rb") as handle:
            stat = os.fstat(handle.fileno())
            return handle.read().decode("ascii"), (stat.st_ino, stat.st_mtime_ns)
    except FileNotFoundError:
        raise CaseKeyMissing("This case's key was destroyed.") from None


def load_key(key_ref: str) -> bytes:
    """The case's data key. A file that changed (rewrapped) or vanished (destroyed by
    another process) is read again: the cache never outlives the file."""
    path = _path(key_ref)
    try:
        stat = path.stat()
    except FileNotFoundError:
        with _cache_lock:
            _cache.pop(key_ref, None)
        raise CaseKeyMissing("This case's key was destroyed.") from None
    with _cache_lock:
        cached = _cache.get(key_ref)
    if cached is not None and cached[0] == (stat.st_ino, stat.st_mtime_ns):
        return cached[1]
    wrapped, identity = _read_wrapped(key_ref)
    key = base64.b64decode(crypto.decrypt(wrapped, context=_context(key_ref)))
    if len(key) != KEY_BYTES:
        raise crypto.DecryptionError("A case key has the wrong length.")
    with _cache_lock:
        _cache[key_ref] = (identity, key)
    return key


def has_key(key_ref: str) -> bool:
    return _path(key_ref).exists()


def destroy_key(key_ref: str) -> bool:
    """Overwrite and delete the case's key; True when there was one to destroy."""
    path = _path(key_ref)
    with _cache_lock:
        _cache.pop(key_ref, None)
    if not path.exists():
        return False
    with _store_lock():
        try:
            fd = os.open(path, os.O_WRONLY)
        except FileNotFoundError:
            return False
        try:
            size = os.fstat(fd).st_size
            os.write(fd, b"\0" * size)
            os.fsync(fd)
        finally:
            os.close(fd)
        path.unlink(missing_ok=True)
        _fsync_dir(path.parent)
    with _cache_lock:
        _cache.pop(key_ref, None)
    return True


def key_refs() -> Iterator[str]:
    directory = keystore_dir()
    if not directory.exists():
        return
    for entry in sorted(directory.iterdir()):
        name = entry.name
        if name.endswith(SUFFIX) and KEY_REF_PATTERN.match(name[: -len(SUFFIX)]):
            yield name[: -len(SUFFIX)]


def wrapping_key_id(key_ref: str) -> str:
    wrapped, _ = _read_wrapped(key_ref)
    return crypto.token_key_id(wrapped)


def rewrap(key_ref: str) -> bool:
    """Wrap the case key again under the current field key; True when it changed.
    The data key itself (and so every value encrypted with it) stays the same."""
    with _store_lock():
        # Read under the lock: a key destroyed meanwhile raises CaseKeyMissing here.
        wrapped, _ = _read_wrapped(key_ref)
        if crypto.token_key_id(wrapped) == crypto.field_keys()[0].key_id:
            return False
        plain = crypto.decrypt(wrapped, context=_context(key_ref))
        _write(key_ref, crypto.encrypt(plain, context=_context(key_ref)))
    with _cache_lock:
        _cache.pop(key_ref, None)
    return True


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def rewrap_all(*, dry_run: bool) -> tuple[int, list[str]]:
    """Every case key under an older field key, wrapped again (or, dry, counted).
    Returns how many changed and the references no configured key unwraps."""
    current = crypto.field_keys()[0].key_id
    changed = 0
    problems: list[str] = []
    for key_ref in key_refs():
        try:
            if wrapping_key_id(key_ref) == current:
                continue
            if dry_run:
                # Check that it still unwraps, so a dry run finds what a run would not.
                wrapped, _ = _read_wrapped(key_ref)
                crypto.decrypt(wrapped, context=_context(key_ref))
            else:
                rewrap(key_ref)
        except CaseKeyMissing:
            continue  # destroyed meanwhile
        except crypto.DecryptionError:
            problems.append(key_ref)
            continue
        changed += 1
    return changed, problems

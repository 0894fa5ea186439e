"""Exclusive advisory locks that name their holder: one writer per ledger.

A lock is ``flock(2)`` on a small lock file (the ledger's is ``LEDGER.lock`` next to it; SQLite's
own byte-range locks on the ledger file are a different lock kind and are left alone). The
kernel drops the lock when its holder exits in any way, ``kill -9`` included, so a crash never
leaves a stale lock behind. The holder writes one line into the file (``gridctl run pid 123``)
so that whoever is refused is told who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

#: Mode of a new lock file: it holds only the holder's name and pid.
LOCK_FILE_MODE = 0o640


class LockError(RuntimeError):
    """A lock could not be taken (one line naming the lock file and why)."""


class LockHeldError(LockError):
    """Another process holds the lock; ``holder`` is what it wrote into the lock file."""

    def __init__(self, path: Path, holder: str, message: str = "") -> None:
        super().__init__(message or f"{path}: held by {holder}")
        self.path, self.holder = path, holder


@dataclass
class HeldLock:
    """A lock this process holds until :meth:`release` (or its exit)."""

    path: Path
    fd: int | None

    def release(self) -> None:
        """Drop the lock (idempotent). The lock file stays: removing it would race a new holder."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)  # closing the only descriptor drops the flock
            self.fd = None

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def hold_lock(path: Path, holder: str) -> HeldLock:
    """Take the exclusive lock at ``path`` without waiting, or raise.

    Parameters
    ----------
    path : Path
        Lock file; created (with its folder) if missing.
    holder : str
        Who takes it, e.g. ``gridctl run``; the pid is added.

    Raises
    ------
    LockHeldError
        Another process (or another open of the file in this process) holds it.
    LockError
        The lock file cannot be created or opened.
    """
    try:
        path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)  # as the socket's folder
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, LOCK_FILE_MODE)
    except OSError as exc:
        raise LockError(f"{path}: cannot open lock file: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        who = _read_holder(fd)
        os.close(fd)
        raise LockHeldError(path, who) from None
    except OSError as exc:
        os.close(fd)
        raise LockError(f"{path}: cannot lock: {exc.strerror or exc}") from None
    with contextlib.suppress(OSError):  # the name is a courtesy; the lock is what counts
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{holder} pid {os.getpid()}\n".encode(), 0)
    return HeldLock(path, fd)


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text.splitlines()[0] if text else "another process"


def ledger_lock_path(ledger_path: Path) -> Path:
    """The lock file of a ledger: ``LEDGER.lock`` in the ledger's folder."""
    ledger_path = Path(ledger_path)
    return ledger_path.with_name(ledger_path.name + ".lock")


def hold_ledger(ledger_path: Path, holder: str) -> HeldLock:
    """Become the only writer of the ledger at ``ledger_path`` (see :func:`hold_lock`).

    Raises :class:`LockHeldError` whose message names the ledger and its current writer.
    """
    try:
        return hold_lock(ledger_lock_path(ledger_path), holder)
    except LockHeldError as exc:
        raise LockHeldError(exc.path, exc.holder,
                            f"{ledger_path}: ledger in use by {exc.holder} (lock {exc.path})") from None

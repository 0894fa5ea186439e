"""One controller per block: the locks ``gridctl run`` holds for its whole life.

Two locks, both ``flock(2)`` (:mod:`gridctl.ledger.lock`), dropped by the kernel however the
daemon ends:

- the site lock ``site-SITE_ID.lock`` in the runtime directory: a second daemon of the same site
  is refused even with another ledger, another socket path or another working directory;
- the ledger lock ``LEDGER.lock``: a second daemon of *another* site id on the same ledger is
  refused too, and ``gridctl settle`` commands that write refuse while the daemon runs.

The runtime directory is ``$GRIDCTL_RUNTIME_DIR``, else systemd's ``$RUNTIME_DIRECTORY``
(``/run/gridctl``), else ``/run/gridctl`` when this user may create it, else
``$XDG_RUNTIME_DIR/gridctl``, else ``TMPDIR/gridctl-UID``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gridctl.ledger.lock import HeldLock, LockError, LockHeldError, hold_ledger, hold_lock

SYSTEM_RUNTIME_DIR = Path("/run/gridctl")
HOLDER = "gridctl run"


class StartRefusedError(RuntimeError):
    """The daemon must not start (one line for the operator); nothing was controlled."""


class AlreadyRunningError(StartRefusedError):
    """Another daemon controls this block or writes this ledger: two controllers never drive one."""


def runtime_dir() -> Path:
    """Where site locks live (see the module docstring for the order of choice)."""
    for name in ("GRIDCTL_RUNTIME_DIR", "RUNTIME_DIRECTORY"):
        value = os.environ.get(name, "").split(":")[0]
        if value:
            return Path(value)
    if _usable(SYSTEM_RUNTIME_DIR):
        return SYSTEM_RUNTIME_DIR
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "gridctl"
    return Path(tempfile.gettempdir()) / f"gridctl-{os.getuid()}"


def _usable(path: Path) -> bool:
    if path.is_dir():
        return os.access(path, os.W_OK | os.X_OK)
    return os.access(path.parent, os.W_OK | os.X_OK)


def site_lock_path(runtime: Path, site_id: str) -> Path:
    """The site lock file in ``runtime`` (site ids are file-name safe identifiers)."""
    return runtime / f"site-{site_id}.lock"


@dataclass
class DaemonGuard:
    """The held site and ledger locks."""

    locks: tuple[HeldLock, ...]

    def release(self) -> None:
        for lock in reversed(self.locks):
            lock.release()


def guard_site(site_id: str, ledger_path: Path, runtime: Path) -> DaemonGuard:
    """Take the site lock, then the ledger lock, or raise :class:`StartRefusedError`."""
    try:
        site_lock = hold_lock(site_lock_path(runtime, site_id), HOLDER)
    except LockHeldError as exc:
        raise AlreadyRunningError(
            f"site '{site_id}' is already controlled by {exc.holder} (lock {exc.path})") from None
    except LockError as exc:
        raise StartRefusedError(f"{exc} (set GRIDCTL_RUNTIME_DIR to a writable folder)") from None
    try:
        ledger_lock = hold_ledger(ledger_path, HOLDER)
    except LockHeldError as exc:
        site_lock.release()
        raise AlreadyRunningError(str(exc)) from None
    except LockError as exc:
        site_lock.release()
        raise StartRefusedError(str(exc)) from None
    return DaemonGuard((site_lock, ledger_lock))

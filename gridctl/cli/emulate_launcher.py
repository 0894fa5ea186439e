"""``gridctl run --emulate``: the site's emulated devices in a child process, on loopback.

The emulators stay out of the daemon's process: ``gridctl run`` starts
``gridctl emulate CONFIG`` as a child process and waits until every configured device port
accepts connections, so the first cycle finds the block up. A port that already answers
before the child starts is refused (a leftover emulator would silently stand in for ours), and
the child is asked to die with its parent (a closed terminal leaves no emulator behind).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from gridctl.config import SiteConfig

log = logging.getLogger(__name__)


class EmulationError(RuntimeError):
    """The emulated site did not come up (one-line message)."""


def device_addresses(site: SiteConfig) -> list[tuple[str, str, int]]:
    """``(device_id, host, port)`` of every device of the site."""
    out = []
    for _node, device in site.all_devices():
        modbus, opcua = device.protocol.modbus, device.protocol.opcua
        if modbus is not None:
            out.append((device.id, modbus.host, modbus.port))
        else:
            url = urlparse(opcua.endpoint_url)
            out.append((device.id, url.hostname or "127.0.0.1", url.port or 4840))
    return out


def _accepting(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


#: prctl option asking the kernel to signal a child when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (no-op where prctl is missing)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def start_emulators(config_path: Path, site: SiteConfig, timeout_s: float = 60.0) -> subprocess.Popen:
    """Start ``gridctl emulate CONFIG`` and wait for all device ports [s]; the child process."""
    for device_id, host, _port in device_addresses(site):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise EmulationError(f"{device_id}: --emulate needs loopback devices, not {host}")
    busy = [(d, h, p) for d, h, p in device_addresses(site) if _accepting(h, p)]
    if busy:
        device_id, host, port = busy[0]
        raise EmulationError(f"{device_id}: port {host}:{port} is already in use (another "
                             "'gridctl emulate' or daemon still running?)")
    child = subprocess.Popen(
        [sys.executable, "-c", "from gridctl.cli import main; main()", "emulate", str(config_path)],
        stdin=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None)  # noqa: PLW1509
    deadline = time.monotonic() + timeout_s
    waiting = device_addresses(site)
    while waiting:
        if child.poll() is not None:
            raise EmulationError(f"'gridctl emulate {config_path}' exited with code {child.returncode}")
        if time.monotonic() > deadline:
            stop_emulators(child)
            names = ", ".join(d for d, _h, _p in waiting[:3])
            raise EmulationError(f"emulated devices not up after {timeout_s:g} s: {names}")
        waiting = [w for w in waiting if not _accepting(w[1], w[2])]
        if waiting:
            time.sleep(0.2)
    log.info("emulated site up pid=%d devices=%d", child.pid, len(device_addresses(site)))
    return child


def stop_emulators(child: subprocess.Popen) -> None:
    """Terminate the emulator child (kill it when it does not stop within 5 s)."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=5.0)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout=5.0)

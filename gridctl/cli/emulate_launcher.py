"""``gridctl run --emulate``: the site's emulated devices in a child process, on loopback.

The emulators stay out of the daemon's process: ``gridctl run`` starts
``gridctl emulate CONFIG`` as a child process and waits until every configured device port
accepts connections, so the first cycle finds the block up. A port that already answers
before the child starts is refused (a leftover emulator would silently stand in for ours), and
the child is asked to die with its parent (a closed terminal leaves no emulator behind).
ECHONET Lite nodes speak UDP: a node is up when it answers a Get of its instance list, and
its address is busy when a UDP socket already holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ipaddress
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
    """``(device_id, host, port)`` of every TCP device of the site (Modbus, OPC UA)."""
    out = []
    for _node, device in site.all_devices():
        modbus, opcua = device.protocol.modbus, device.protocol.opcua
        if modbus is not None:
            out.append((device.id, modbus.host, modbus.port))
        elif opcua is not None:
            url = urlparse(opcua.endpoint_url)
            out.append((device.id, url.hostname or "127.0.0.1", url.port or 4840))
    return out


def echonet_addresses(site: SiteConfig) -> list[tuple[str, str, int]]:
    """``(device_id, host, port)`` of the first ECHONET Lite device of every node (UDP)."""
    seen: dict[tuple[str, int], str] = {}
    for _node, device in site.all_devices():
        el = device.protocol.echonet
        if el is not None:
            seen.setdefault((el.host, el.port), device.id)
    return [(device_id, host, port) for (host, port), device_id in seen.items()]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _accepting(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def _udp_taken(host: str, port: int) -> bool:
    """True when a UDP socket already holds ``host:port`` (an ECHONET Lite node is there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _answering(nodes: list[tuple[str, str, int]], timeout_s: float = 0.3) -> set[tuple[str, int]]:
    """The ECHONET Lite nodes among ``nodes`` that answer a Get of their instance list (0xD6)."""
    from drivers.echonet.client import EchonetClient
    from drivers.echonet.frame import NODE_PROFILE
    from drivers.errors import DeviceError

    async def ask() -> set[tuple[str, int]]:
        async with EchonetClient("127.0.0.1", timeout_s=timeout_s, retries=0) as client:
            async def one(host: str, port: int) -> tuple[str, int] | None:
                try:
                    await client.get(host, port, NODE_PROFILE, (0xD6,))
                except DeviceError:
                    return None
                return host, port
            found = await asyncio.gather(*(one(h, p) for _d, h, p in nodes))
        return {f for f in found if f is not None}

    return asyncio.run(ask())


#: prctl option asking the kernel to signal a child when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (no-op where prctl is missing)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def start_emulators(config_path: Path, site: SiteConfig, timeout_s: float = 60.0) -> subprocess.Popen:
    """Start ``gridctl emulate CONFIG`` and wait for all device ports [s]; the child process."""
    tcp, udp = device_addresses(site), echonet_addresses(site)
    for device_id, host, _port in tcp + udp:
        if not _loopback(host):
            raise EmulationError(f"{device_id}: --emulate needs loopback devices, not {host}")
    busy = [(d, h, p) for d, h, p in tcp if _accepting(h, p)] + [(d, h, p) for d, h, p in udp if _udp_taken(h, p)]
    if busy:
        device_id, host, port = busy[0]
        raise EmulationError(f"{device_id}: port {host}:{port} is already in use (another "
                             "'gridctl emulate' or daemon still running?)")
    child = subprocess.Popen(
        [sys.executable, "-c", "from gridctl.cli import main; main()", "emulate", str(config_path)],
        stdin=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None)  # noqa: PLW1509
    deadline = time.monotonic() + timeout_s
    waiting = tcp + udp
    while waiting:
        if child.poll() is not None:
            raise EmulationError(f"'gridctl emulate {config_path}' exited with code {child.returncode}")
        if time.monotonic() > deadline:
            stop_emulators(child)
            names = ", ".join(d for d, _h, _p in waiting[:3])
            raise EmulationError(f"emulated devices not up after {timeout_s:g} s: {names}")
        answering = _answering([w for w in waiting if w in udp]) if any(w in udp for w in waiting) else set()
        waiting = [w for w in waiting if (w in udp and (w[1], w[2]) not in answering)
                   or (w not in udp and not _accepting(w[1], w[2]))]
        if waiting:
            time.sleep(0.2)
    log.info("emulated site up pid=%d devices=%d", child.pid, len(site.all_devices()))
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

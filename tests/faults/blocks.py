"""A real daemon on an emulated block, as the fault tests run it.

The devices of a site file are emulated in-process on loopback (``sim.emulators.site``) and
the real daemon (drivers, core, optimizer, SQLite ledger) controls them at a fast poll; the
ledger must verify when the block stops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from gridctl.config import SiteConfig
from gridctl.daemon import build_daemon
from gridctl.ledger.verify import verify_ledger
from sim.emulators.site import EmulatedSite, build_site

POLL_S = 0.5


def fault_site(site: SiteConfig, folder: Path, **islanding: float) -> SiteConfig:
    """``site`` with a fast poll, short re-plans and horizon, an operator socket in ``folder``
    and the given ``islanding`` settings."""
    control = site.control.model_copy(update={
        "poll_period_s": POLL_S, "setpoint_expiry_s": 5.0, "replan_period_s": 30,
        "horizon_h": 2.0, "socket_path": folder / "gridctl.sock"})
    return site.model_copy(update={"control": control,
                                   "islanding": site.islanding.model_copy(update=islanding)})


@contextlib.asynccontextmanager
async def running_block(site: SiteConfig, folder: Path) -> AsyncIterator[tuple[EmulatedSite, object, list]]:
    """Emulate ``site``, run a daemon on it until every device is connected, yield
    ``(emulated, daemon, cycle reports)``; stop both afterwards and verify the ledger."""
    emulated = build_site(site, base_dir=folder)
    await emulated.start()
    daemon, ledger = build_daemon(site, ledger_path=folder / "ledger.sqlite", shipper=None)
    reports: list = []
    task = asyncio.create_task(daemon.run(on_cycle=reports.append))
    try:
        await until(lambda: reports and all(v is None for v in reports[-1].device_faults.values()),
                    60.0, "every device connected")
        yield emulated, daemon, reports
    finally:
        daemon.stop()
        await task
        assert verify_ledger(ledger).ok
        ledger.close()
        await emulated.stop()


async def until(condition, timeout_s: float, what: str) -> None:  # noqa: ANN001
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.05)


async def next_cycles(reports: list, n: int) -> list:
    start = len(reports)
    await until(lambda: len(reports) >= start + n, 30.0 + n * POLL_S * 4, f"{n} cycles")
    return reports[start:start + n]


def served(emulated: EmulatedSite, switch: tuple[str, tuple[int, ...]]) -> list[bool]:
    """Each channel's circuit connected, as the emulated device holds it: a relay board's NC
    contactors (energised = disconnected) or an ECHONET Lite switch object."""
    device_id, channels = switch
    if device_id in emulated.relays:
        board = emulated.relays[device_id]
        return [not board.circuit_energised(ch) for ch in channels]
    return [emulated.echonet[device_id].is_on]


def commanded_off(report, device_id: str) -> bool:  # noqa: ANN001 - a daemon CycleReport
    """True when the cycle commanded some channel of ``device_id`` disconnected."""
    return any(c.device_id == device_id and not c.on for c in report.decision.setpoints.switch_commands)

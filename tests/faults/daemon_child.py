"""A daemon process for the kill -9 tests: scripted plant, accelerated wall clock, real ledger.

Run as ``python -m tests.faults.daemon_child LEDGER BASE_ISO SPEED PROGRESS``. The wall clock
starts at BASE and runs SPEED times faster than real time, so a parent that restarts the
process with BASE advanced by the real time elapsed gets one continuous (accelerated) time
line across kills. Each cycle appends ``pid cycle healthy violations`` to PROGRESS.

``GRIDCTL_TEST_SOCKET`` gives the daemon an operator socket at that path (default: none);
``GRIDCTL_TEST_NOFILE`` lowers the process's file-descriptor limit (``RLIMIT_NOFILE``) to it.
``GRIDCTL_TEST_CLOCK_JUMP=AT_S,STEP_S,FOR_S`` steps the wall clock (only) by STEP_S from
AT_S to AT_S + FOR_S accelerated seconds after start, as a bad NTP server or RTC would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import resource
import sys
import time
from pathlib import Path

from gridctl.daemon import build_daemon
from tests.daemon.conftest import Plant, fast_site, scripted_factory
from tests.daemon.test_cycle_table import outside_limits


class AcceleratedClock:
    """Wall and monotonic time running ``speed`` times faster than real time."""

    def __init__(self, base: dt.datetime, speed: float,
                 jump: tuple[float, float, float] | None = None) -> None:
        self.base, self.speed, self.t0 = base, speed, time.monotonic()
        self.jump = jump

    def now(self) -> dt.datetime:
        elapsed_s = (time.monotonic() - self.t0) * self.speed
        if self.jump is not None and self.jump[0] <= elapsed_s < self.jump[0] + self.jump[2]:
            elapsed_s += self.jump[1]
        return self.base + dt.timedelta(seconds=elapsed_s)

    def monotonic(self) -> float:
        return (time.monotonic() - self.t0) * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    def track(self, work) -> None:
        """Solves take real (accelerated) time here, as they would in production."""


async def main(ledger_path: Path, base: dt.datetime, speed: float, progress: Path) -> int:
    jump = os.environ.get("GRIDCTL_TEST_CLOCK_JUMP")
    clock = AcceleratedClock(base, speed, tuple(float(x) for x in jump.split(",")) if jump else None)
    # The devices' counters run on true time: a box's clock stepping does not move a meter.
    plant = Plant(clock=AcceleratedClock(base, speed),
                  stuck_release=bool(os.environ.get("GRIDCTL_TEST_STUCK_RELEASE")))
    site = fast_site(poll_period_s=float(os.environ.get("GRIDCTL_TEST_POLL_S", "2")),
                     setpoint_expiry_s=30.0, replan_period_s=600, solver_time_limit_s=30.0)
    socket = os.environ.get("GRIDCTL_TEST_SOCKET")
    daemon, ledger = build_daemon(site, clock=clock, factory=scripted_factory(plant),
                                  ledger_path=ledger_path, shipper=None,
                                  socket_path=Path(socket) if socket else None)
    out = progress.open("a", encoding="utf-8")

    def on_cycle(report) -> None:
        bad = len(outside_limits(site, report))
        out.write(f"{os.getpid()} {daemon.cycle.count} {int(report.healthy)} {bad}\n")
        out.flush()

    try:
        return await daemon.run(on_cycle=on_cycle)
    finally:
        ledger.close()
        out.close()


if __name__ == "__main__":
    if os.environ.get("GRIDCTL_TEST_NOFILE"):
        nofile = int(os.environ["GRIDCTL_TEST_NOFILE"])
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    args = sys.argv[1:]
    sys.exit(asyncio.run(main(Path(args[0]), dt.datetime.fromisoformat(args[1]), float(args[2]),
                              Path(args[3]))))

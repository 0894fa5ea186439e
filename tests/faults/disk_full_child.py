"""A daemon process whose ledger file system "fills up" for a while (test_disk_full.py).

Run as ``python -m tests.faults.disk_full_child LEDGER BASE_ISO SPEED FULL_FROM_S FULL_UNTIL_S
STOP_S``. The wall clock starts at BASE and runs SPEED times faster than real time. From
FULL_FROM_S to FULL_UNTIL_S (accelerated seconds after BASE) the process's file size limit
(RLIMIT_FSIZE) is 0, so every write to a regular file fails with EFBIG (SIGXFSZ is ignored), as
SQLite's writes to a full disk do; then the limit is restored. At STOP_S the daemon is stopped.

Logging goes to stdout at INFO (as ``gridctl run`` logs); each cycle also prints
``PROGRESS cycle sim_s healthy written health storage_error`` there (a pipe, not a file: a file
could not be written while the limit is 0).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import resource
import signal
import sys
from pathlib import Path

from gridctl.cli.commands_run import _setup_logging
from gridctl.config.policy import InfluxV1
from gridctl.daemon import build_daemon
from tests.daemon.conftest import Plant, fast_site, scripted_factory
from tests.faults.daemon_child import AcceleratedClock


def unreachable_influx(site):
    """InfluxDB configured (telemetry is queued in the outbox) but nothing ships it."""
    closed = InfluxV1(version=1, url="http://127.0.0.1:9", database="gridctl")
    return site.model_copy(update={"storage": site.storage.model_copy(update={"influxdb": closed})})


async def main(ledger_path: Path, base: dt.datetime, speed: float, full_from_s: float,
               full_until_s: float, stop_s: float) -> int:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    _setup_logging("info")
    clock = AcceleratedClock(base, speed)
    site = unreachable_influx(fast_site(poll_period_s=2.0, setpoint_expiry_s=30.0,
                                        replan_period_s=600, solver_time_limit_s=30.0))
    daemon, ledger = build_daemon(site, clock=clock, factory=scripted_factory(Plant(clock=clock)),
                                  ledger_path=ledger_path, socket_path=None, shipper=None)

    def on_cycle(report) -> None:
        sim_s = (clock.now() - base).total_seconds()
        full = full_from_s <= sim_s < full_until_s
        resource.setrlimit(resource.RLIMIT_FSIZE, (0 if full else soft, hard))
        status = daemon.status()
        print(f"PROGRESS {daemon.cycle.count} {sim_s:.0f} {int(report.healthy)} "
              f"{sum(report.written.values())} {status['health']} "
              f"{status.get('storage_error') or '-'}", flush=True)
        if sim_s >= stop_s:
            daemon.stop()

    try:
        return await daemon.run(on_cycle=on_cycle)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        ledger.close()


if __name__ == "__main__":
    a = sys.argv[1:]
    sys.exit(asyncio.run(main(Path(a[0]), dt.datetime.fromisoformat(a[1]), float(a[2]),
                              float(a[3]), float(a[4]), float(a[5]))))

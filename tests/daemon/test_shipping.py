"""The daemon's outbox shipper: the sink's own loop, every round on one worker thread.

A scripted transport refuses the first writes (InfluxDB down), then acknowledges; the ledger is
real. The status the daemon reports is the sink's ``ShipperStatus``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

from gridctl.daemon.lifecycle.shipping import BackgroundShipper
from gridctl.ledger import Ledger
from gridctl.sinks import SinkError

NOW = dt.datetime(2026, 8, 1, 3, 0, tzinfo=dt.UTC)


class ScriptedTransport:
    """Refuses the first ``down`` writes with a transient error; records who wrote what."""

    description = "scripted"

    def __init__(self, down: int) -> None:
        self.down, self.lines, self.threads = down, [], set()

    def write(self, lines: list[str]) -> None:
        self.threads.add(threading.get_ident())
        if self.down > 0:
            self.down -= 1
            raise SinkError("connection refused")
        self.lines.extend(lines)


async def test_shipper_backs_off_recovers_and_reports_the_sinks_status(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(path, "misono", clock=lambda: NOW) as ledger:
        ledger.enqueue_telemetry([f"telemetry,site=misono x_kw={i} {i}" for i in range(5)])
    transport = ScriptedTransport(down=3)
    shipper = BackgroundShipper(path, "misono", transport, batch_size=2,
                                clock=lambda: NOW + dt.timedelta(seconds=90), idle_s=0.05,
                                backoff_initial_s=0.01, backoff_max_s=0.02)
    assert shipper.status() is None  # no round yet
    stop = asyncio.Event()
    task = asyncio.create_task(shipper.run(stop))
    try:
        for _ in range(400):
            await asyncio.sleep(0.01)
            status = shipper.status()
            if status is not None and status.backlog_rows == 0:
                break
    finally:
        stop.set()
        await asyncio.wait_for(task, 5.0)  # the loop ends on stop, without raising
        shipper.close()
    assert sorted(transport.lines) == sorted(f"telemetry,site=misono x_kw={i} {i}" for i in range(5))
    assert status.backlog_rows == 0 and status.oldest_age_s is None
    assert status.shipped_rows == 5 and status.consecutive_failures == 0
    assert status.last_error is None and status.retry_in_s == 0.0
    # One worker thread did every write (it also holds the shipper's ledger connection).
    assert len(transport.threads) == 1 and threading.get_ident() not in transport.threads


async def test_status_while_failing_and_flush_at_shutdown(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(path, "misono", clock=lambda: NOW) as ledger:
        ledger.enqueue_telemetry(["telemetry,site=misono x_kw=1 1"])
    transport = ScriptedTransport(down=10**6)
    shipper = BackgroundShipper(path, "misono", transport, batch_size=10,
                                clock=lambda: NOW + dt.timedelta(seconds=90),
                                backoff_initial_s=0.01, backoff_max_s=0.04)
    stop = asyncio.Event()
    task = asyncio.create_task(shipper.run(stop))
    await asyncio.sleep(0.3)
    status = shipper.status()
    assert status.backlog_rows == 1 and status.oldest_age_s == 90.0
    assert status.consecutive_failures >= 3 and status.last_error == "connection refused"
    assert 0.02 <= status.retry_in_s <= 0.04  # capped, less a jitter of up to half
    stop.set()
    await asyncio.wait_for(task, 5.0)
    transport.down = 0
    assert await shipper.flush() == 1
    assert shipper.status().backlog_rows == 0 and shipper.status().consecutive_failures == 0
    shipper.close()

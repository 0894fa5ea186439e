"""Back-off with jitter and a cap, reset on success; 401/403/404 are rejections, not outages.

The 404 comes from the real InfluxDB 1.6 (a database that does not exist); the 401 from the same
server with authentication on (tests/sinks/test_credentials.py's server).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random

import pytest

from gridctl.daemon.lifecycle.status import shipper_view
from gridctl.ledger import Ledger
from gridctl.sinks import OutboxShipper, SinkError, V1Transport

from .test_credentials import auth_influxdb  # noqa: F401  (fixture on the session auth server)

pytestmark = pytest.mark.integration
NOW = dt.datetime(2026, 8, 1, 3, 0, tzinfo=dt.UTC)


class Counting:
    """A real transport, counted."""

    def __init__(self, transport) -> None:
        self.transport, self.calls = transport, 0
        self.description = transport.description

    def write(self, lines: list[str]) -> None:
        self.calls += 1
        self.transport.write(lines)


class Down:
    """Refuses ``down`` writes as a dead server would, then accepts."""

    description = "scripted"

    def __init__(self, down: int) -> None:
        self.down = down

    def write(self, lines: list[str]) -> None:
        if self.down > 0:
            self.down -= 1
            raise SinkError("connection refused")


def test_delays_double_to_the_cap_with_jitter_and_reset_on_success(tmp_path):
    with Ledger(tmp_path / "l.sqlite", "misono", clock=lambda: NOW) as ledger:
        ledger.enqueue_telemetry(["telemetry,site=misono x_kw=1 1"])
        shipper = OutboxShipper(ledger, Down(9), backoff_initial_s=5.0, backoff_max_s=300.0,
                                clock=lambda: NOW, rng=random.Random(7))
        delays = []
        for _ in range(9):
            with pytest.raises(SinkError):
                shipper.ship_once()
            delays.append(shipper.retry_delay_s())
        nominal = [min(300.0, 5.0 * 2**i) for i in range(9)]
        assert all(n / 2 <= d <= n for d, n in zip(delays, nominal, strict=True)), delays
        assert len({d / n for d, n in zip(delays, nominal, strict=True)}) > 1  # jittered
        status = shipper.status()
        assert status.failing_since_utc == NOW and status.last_status is None and status.rejected is None
        assert shipper.ship_once() == 1
        status = shipper.status()
        assert (status.retry_in_s, status.consecutive_failures, status.failing_since_utc) == (0.0, 0, None)


async def ship_for(shipper: OutboxShipper, seconds: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(shipper.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait_for(task, 10.0)


async def test_404_missing_database_is_a_rejection_not_retried_hot(influxdb, tmp_path, caplog):
    with Ledger(tmp_path / "l.sqlite", "misono", clock=lambda: NOW) as ledger:
        ledger.enqueue_telemetry(["telemetry,site=misono x_kw=1 1"])
        transport = Counting(V1Transport(influxdb.url, "no_such_database"))
        shipper = OutboxShipper(ledger, transport, backoff_initial_s=0.01, backoff_max_s=0.5,
                                clock=lambda: NOW)
        with caplog.at_level(logging.DEBUG, logger="gridctl.sinks.shipper"):
            await ship_for(shipper, 1.2)
        # Transient failures would retry ~every 0.01-0.5 s, doubling; a rejection waits the cap.
        assert 2 <= transport.calls <= 4, transport.calls
        status = shipper.status()
        assert status.rejected == "rejected: 404 not found" and status.last_status == 404
        assert "database not found" in status.last_error and "\n" not in status.last_error
        assert status.retry_in_s == 0.5 and status.backlog_rows == 1  # rows kept
        errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(errors) == 1 and "rejected: 404 not found" in errors[0].getMessage()


async def test_401_wrong_password_is_a_rejection_shown_in_status(auth_influxdb, tmp_path):  # noqa: F811
    with Ledger(tmp_path / "l.sqlite", "misono", clock=lambda: NOW) as ledger:
        ledger.enqueue_telemetry(["telemetry,site=misono x_kw=1 1"])
        transport = V1Transport(auth_influxdb.url, "secure", username="gridctl", password="wrong")
        shipper = OutboxShipper(ledger, transport, backoff_initial_s=0.01, backoff_max_s=30.0,
                                clock=lambda: NOW)
        await ship_for(shipper, 0.3)

        class Daemonless:
            def status(self):
                return shipper.status()

        view = json.loads(json.dumps(shipper_view(Daemonless())))  # as the socket sends it
    assert view["rejected"] == "rejected: 401 unauthorized" and view["last_status"] == 401
    assert view["failing_since_utc"] == NOW.isoformat() and view["consecutive_failures"] == 1
    assert view["retry_in_s"] == 30.0

"""InfluxDB down for many periods, then back: every settlement arrives, telemetry is thinned.

Real ``influxd`` (Debian 1.6.7) on loopback, real ledger outbox and shipper; the daemon runs on
the scripted plant with a manual clock so hours of periods pass in seconds.
"""

from __future__ import annotations

import asyncio

import pytest

from gridctl.config.policy import InfluxV1
from gridctl.daemon.build import build_daemon
from tests.daemon.conftest import Plant, fast_site, scripted_factory
from tests.daemon.test_cycle_table import assert_periods_contiguous, outside_limits, period_starts


@pytest.mark.slow
async def test_influx_down_for_hours_then_everything_ships(tmp_path, influxdb, influx_database):
    from gridctl.daemon.clock import ManualClock
    from tests.daemon.conftest import START

    site = fast_site(poll_period_s=10.0, setpoint_expiry_s=30.0)
    storage = site.storage.model_copy(update={
        "influxdb": InfluxV1(version=1, url=influxdb.url, database=influx_database),
        "telemetry_period_s": 60.0})
    site = site.model_copy(update={"storage": storage})
    clock = ManualClock(START)
    plant = Plant(clock=clock)
    daemon, ledger = build_daemon(site, clock=clock, factory=scripted_factory(plant),
                                  ledger_path=tmp_path / "ledger.sqlite", socket_path=None)
    daemon.telemetry.thin_above_rows = 200  # small, so the outage crosses it in the test
    influxdb.stop()
    reports = []

    async def slowly(n: int) -> None:  # give the background shipper real time to try
        for _ in range(n):
            reports.append(await daemon.cycle.run_once())
            daemon._after_cycle(reports[-1], False)
            await clock.sleep(site.control.poll_period_s)
            await asyncio.sleep(0.002)

    ship_task = asyncio.create_task(daemon._ship_loop())
    try:
        await slowly(4 * 360)  # 4 h down: 7 periods and more settled into the outbox
        down_backlog = ledger.outbox_backlog()[0]
        settled = period_starts(ledger)
        assert len(settled) >= 7 and down_backlog > 200
        assert daemon.telemetry.thinned > 0
        assert all(r.healthy for r in reports)
        assert not [b for r in reports for b in outside_limits(site, r)]
        influxdb.start()
        for _ in range(200):  # the shipper retries every few seconds
            await slowly(5)
            if ledger.outbox_backlog()[0] == 0:
                break
    finally:
        ship_task.cancel()
        await asyncio.gather(ship_task, return_exceptions=True)
        await daemon.shutdown()
    assert ledger.outbox_backlog()[0] == 0
    rows = influxdb.rows('SELECT count("sold_kwh") FROM "settlement_period"', influx_database)
    assert rows and rows[0]["count"] == len(period_starts(ledger))
    members = influxdb.rows('SELECT count("bill_jpy") FROM "settlement_member"', influx_database)
    assert members and members[0]["count"] == len(period_starts(ledger)) * len(site.nodes)
    telemetry = influxdb.rows('SELECT count(*) FROM "telemetry"', influx_database)
    assert telemetry
    assert_periods_contiguous(ledger)
    ledger.close()

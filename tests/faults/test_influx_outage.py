"""InfluxDB down for many periods, then back: every settlement arrives, telemetry is thinned.

Real ``influxd`` (Debian 1.6.7) on loopback, real ledger outbox and shipper; the daemon runs on
the scripted plant with a manual clock so hours of periods pass in seconds.
"""

from __future__ import annotations

import asyncio

import pytest

from gridctl.config.policy import InfluxV1
from gridctl.daemon import build_daemon
from gridctl.daemon.lifecycle.shipping import shipper_for
from tests.daemon.conftest import Plant, fast_site, scripted_factory
from tests.daemon.test_cycle_table import assert_periods_contiguous, outside_limits, period_starts


@pytest.mark.slow
async def test_influx_down_for_hours_then_everything_ships(tmp_path, influxdb, influx_database):
    from gridctl.daemon import ManualClock
    from tests.daemon.conftest import START

    site = fast_site(poll_period_s=10.0, setpoint_expiry_s=30.0)
    storage = site.storage.model_copy(update={
        "influxdb": InfluxV1(version=1, url=influxdb.url, database=influx_database),
        "telemetry_period_s": 60.0})
    site = site.model_copy(update={"storage": storage})
    clock = ManualClock(START)
    plant = Plant(clock=clock)
    # The shipper of storage.influxdb with the back-off capped at 2 s: the outage below lasts
    # only tens of real seconds, and the production cap (300 s) would outlast the test.
    shipper = shipper_for(site, tmp_path / "ledger.sqlite", clock.now, backoff_max_s=2.0)
    daemon, ledger = build_daemon(site, clock=clock, factory=scripted_factory(plant),
                                  ledger_path=tmp_path / "ledger.sqlite", socket_path=None,
                                  shipper=shipper)
    daemon.telemetry.thin_above_rows = 200  # small, so the outage crosses it in the test
    influxdb.stop()
    reports = []

    async def slowly(n: int) -> None:  # give the background shipper real time to try
        for _ in range(n):
            reports.append(await daemon.cycle.run_once())
            daemon._after_cycle(reports[-1], False)
            await clock.sleep(site.control.poll_period_s)
            await asyncio.sleep(0.002)

    ship_task = daemon._start_shipping()  # the sink's own loop, as daemon.run starts it
    try:
        await slowly(4 * 360)  # 4 h down: 7 periods and more settled into the outbox
        down_backlog = ledger.outbox_backlog()[0]
        settled = period_starts(ledger)
        assert len(settled) >= 7 and down_backlog > 200
        assert daemon.telemetry.thinned > 0
        down = daemon.status()["shipper"]  # the sink's status, backing off
        assert down["consecutive_failures"] >= 1 and down["last_error"] and down["backlog_rows"] > 0
        assert all(r.healthy for r in reports)
        assert not [b for r in reports for b in outside_limits(site, r)]
        influxdb.start()
        for _ in range(200):  # the shipper retries after its back-off
            await slowly(5)
            if ledger.outbox_backlog()[0] == 0:
                break
        shipped = daemon.status()["shipper"]
    finally:
        await daemon._stop_shipping(ship_task)
        await daemon.shutdown()
    assert ledger.outbox_backlog()[0] == 0
    assert shipped["consecutive_failures"] == 0 and shipped["last_error"] is None
    assert shipped["shipped_rows"] >= down_backlog and shipped["retry_in_s"] == 0.0
    rows = influxdb.rows('SELECT count("sold_kwh") FROM "settlement_period"', influx_database)
    assert rows and rows[0]["count"] == len(period_starts(ledger))
    members = influxdb.rows('SELECT count("bill_jpy") FROM "settlement_member"', influx_database)
    assert members and members[0]["count"] == len(period_starts(ledger)) * len(site.nodes)
    telemetry = influxdb.rows('SELECT count(*) FROM "telemetry"', influx_database)
    assert telemetry
    assert_periods_contiguous(ledger)
    ledger.close()

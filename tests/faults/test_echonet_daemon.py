"""The daemon runs the ECHONET Lite site as it runs the SunSpec one (configs/misono-echonet.yaml).

Two ECHONET homes and the store (SunSpec devices and a relay board) are emulated in-process on
loopback (one ECHONET node per home on 127.0.0.11-12, free UDP ports); the real daemon with the
real drivers, core, optimizer and SQLite ledger controls them on an accelerated clock shared
with the emulators' plant, so 30-minute periods close within seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from gridctl.config import load_site
from gridctl.controller.types import SetpointKind
from gridctl.daemon import build_daemon
from gridctl.ledger.verify import verify_ledger
from sim.emulators.site import build_site
from tests.daemon.test_cycle_table import outside_limits
from tests.faults.daemon_child import AcceleratedClock
from tests.faults.blocks import until
from tests.fixtures.emulators import REPO, write_site_config

ECHONET_SITE = REPO / "configs" / "misono-echonet.yaml"
START = dt.datetime(2026, 8, 3, 2, 26, 0, tzinfo=dt.UTC)  # 11:26 JST, a summer weekday
SPEED = 20.0  # accelerated seconds per real second


def fast(site, **islanding):  # noqa: ANN001, ANN201 - SiteConfig in, SiteConfig out
    control = site.control.model_copy(update={
        "poll_period_s": 2.0, "setpoint_expiry_s": 30.0, "replan_period_s": 600, "horizon_h": 2.0,
        "solver_time_limit_s": 20.0, "socket_path": None})
    market = site.market.model_copy(update={"grace_period_s": 30})
    return site.model_copy(update={"control": control, "market": market,
                                   "islanding": site.islanding.model_copy(update=islanding)})


@pytest.fixture
async def echonet_block(tmp_path, monkeypatch):
    """Homes 1-2 (ECHONET Lite) and the store (SunSpec + relay board) emulated; a daemon on them."""
    monkeypatch.chdir(tmp_path)
    site = fast(load_site(write_site_config(tmp_path, source=ECHONET_SITE, node_ids=["home-1", "home-2", "store"])))
    clock = AcceleratedClock(START, SPEED)
    emulated = build_site(site, base_dir=tmp_path, time_scale=SPEED, epoch0_s=START.timestamp())
    await emulated.start()
    daemon, ledger = build_daemon(site, clock=clock, ledger_path=tmp_path / "ledger.sqlite", shipper=None,
                                  runtime_dir=None)
    reports: list = []
    task = asyncio.create_task(daemon.run(on_cycle=reports.append))
    try:
        await until(lambda: reports and all(v is None for v in reports[-1].device_faults.values()),
                    60.0, "every device connected")
        yield site, emulated, daemon, ledger, reports
    finally:
        daemon.stop()
        await task
        assert verify_ledger(ledger).ok
        ledger.close()
        await emulated.stop()


@pytest.mark.slow
async def test_daemon_reads_writes_and_settles_the_echonet_site(echonet_block):
    site, emulated, daemon, ledger, reports = echonet_block
    echonet_ids = [d.id for n, d in site.all_devices() if d.protocol.echonet is not None]
    assert len(echonet_ids) == 8
    # every ECHONET device is read, healthy, cycle after cycle
    await until(lambda: len(reports) >= 10, 60.0, "ten cycles")
    assert all(reports[-1].device_faults[d] is None for d in echonet_ids)
    assert all(r.healthy for r in reports[-5:])

    # setpoints reach the emulated ECHONET devices, which follow them. The cycle after the last
    # report may already have written (its report comes after its record stage): the device
    # holds the last or the one before.
    def written(device_id: str, kind: SetpointKind) -> list[float]:
        values = [v for r in reports for sp, v in r.setpoints if sp.device_id == device_id and sp.kind is kind]
        return values[-2:]

    def held_kw(battery) -> float:  # noqa: ANN001 - an EchonetBatteryObject
        sign = {"charging": -1.0, "discharging": 1.0}.get(battery.mode, 0.0)
        return sign * (battery.discharge_w if sign > 0 else battery.charge_w) / 1000.0

    await until(lambda: written("home-1-battery", SetpointKind.BATTERY_KW), 30.0, "a battery setpoint")
    for device_id in ("home-1-battery", "home-2-battery"):
        battery = emulated.echonet[device_id]
        recent = written(device_id, SetpointKind.BATTERY_KW)
        assert any(abs(held_kw(battery) - kw) <= 0.001 for kw in recent), (device_id, battery.mode, recent)
        battery.advance()
        assert any(abs(battery.physics.battery.power_kw - kw) <= 0.05 for kw in recent)
    assert any(abs(kw) > 0.5 for r in reports for sp, kw in r.setpoints
               if sp.kind is SetpointKind.BATTERY_KW and sp.device_id.startswith("home-"))

    # the PV limits written reach the emulated ECHONET PV (0xA1, W); output stays within them
    for device_id in ("home-1-pv", "home-2-pv"):
        recent = written(device_id, SetpointKind.PV_LIMIT_KW)
        pv = emulated.echonet[device_id]
        assert pv.limit_w in {round(kw * 1000.0) for kw in recent}, (device_id, pv.limit_w, recent)
        pv.advance()
        assert 0.0 <= pv.physics.pv.power_kw <= max(recent) + 1e-6

    # settled periods: 02:00-02:30 closes at 02:30 and settles after the grace time
    await until(lambda: ledger.settlements(), 90.0, "a settled period")
    (settlement, revision), *_ = ledger.settlements()
    assert settlement.start_utc == dt.datetime(2026, 8, 3, 2, 0, tzinfo=dt.UTC) and revision == 1
    assert not [b for r in reports for b in outside_limits(site, r)]

"""From a smart meter on the wire to the ledger: 0xEA/0xEB settle a period, the live 0xE0 does not.

home-1's grid meter is the plant-backed ECHONET Lite meter emulator on loopback (real UDP),
read by gridctl's own ``EchonetSmartMeter`` driver; its readings go through the daemon's
``counter_samples`` into the real recorder and a real SQLite ledger. The other members'
meters and routers report constant counters (they are not the point here). Simulated time
is a manual clock: the meter imports 36 kW, and gridctl polls 5 s after the first boundary
but 20 s after the second, so live counters would bill 0.15 kWh too much.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D
from pathlib import Path

from drivers.capabilities import DeviceReading, EnergyCounters, LegReading
from drivers.echonet.client import EchonetClient
from drivers.echonet.devices import EchonetSmartMeter
from drivers.profile import EchonetEndpoint
from gridctl.config import load_site
from gridctl.daemon.lifecycle.build import LedgerPeriods
from gridctl.daemon.stages.record import Recorder
from gridctl.daemon.stages.snapshot import counter_samples, expected_channels
from gridctl.ledger import Ledger
from gridctl.settlement.model import CounterSource
from sim.emulators.echonet_devices import EchonetMeterObject, PlantClock, echonet_node
from sim.emulators.sunspec_server import DevicePhysics
from sim.plant.devices import CounterPair

SITE = load_site(Path(__file__).resolve().parents[2] / "configs" / "misono.yaml")
HOST = "127.0.0.2"
T0 = dt.datetime(2026, 8, 1, 3, 0, tzinfo=dt.UTC)  # 12:00 JST, the ledger's first period
T1 = T0 + dt.timedelta(minutes=30)
#: Simulated time 0 is ten seconds before T0.
EPOCH0_S = (T0 - dt.timedelta(seconds=10)).timestamp()
#: home-1's first-tier import price in August 2026 [JPY/kWh] (configs/misono.yaml): 29.80 +
#: 3.98 renewable surcharge - 1.70 fuel adjustment.
HOME1_PRICE = D("32.08")


class Wall:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _others() -> dict[str, DeviceReading]:
    readings: dict[str, DeviceReading] = {}
    for node in SITE.nodes:
        for meter in node.meters:
            readings[meter.id] = DeviceReading(ac_power_kw=0.0, counters=EnergyCounters(10.0, 1.0))
        if node.router is not None:
            legs = {leg.id: LegReading(leg.id, 0.0, EnergyCounters(5.0, 5.0), None, None)
                    for leg in node.router.legs}
            readings[node.router.id] = DeviceReading(legs=legs)
    return readings


async def test_a_period_settles_from_the_meter_s_fixed_points_read_over_echonet(tmp_path):
    wall = Wall()
    meter = EchonetMeterObject(
        DevicePhysics("meter", meter=CounterPair(), meter_power_kw=lambda _t: 36.0),
        clock=PlantClock(clock=wall, epoch0_s=EPOCH0_S), coefficient=10, unit_code=0x04)
    ledger = Ledger(tmp_path / "ledger.sqlite", SITE.site.id, clock=lambda: T1)
    recorder = Recorder(expected_channels(SITE), SITE.market.grace_period_s, LedgerPeriods(SITE, ledger),
                        fixed_channels=[("home-1", "grid")])
    async with echonet_node(HOST, 0, meter) as node, \
            EchonetClient("127.0.0.1", timeout_s=0.5, retries=1, backoff_s=0.01) as client:
        driver = EchonetSmartMeter(EchonetEndpoint(HOST, node.port, 1, timeout_s=0.5), client,
                                   name="home-1-meter")
        await driver.connect()
        for sim_s, now in ((15.0, T0 + dt.timedelta(seconds=5)), (1830.0, T1 + dt.timedelta(seconds=20))):
            wall.t = sim_s
            reading = await driver.read_snapshot()
            assert reading.fixed_counters is not None and reading.fixed_counters.at_utc == now.replace(second=0)
            recorder.observe(now, counter_samples(SITE, {**_others(), "home-1-meter": reading}))
        live_kwh = reading.counters.supplied_kwh
        await driver.close()
    assert recorder.settle_due(T1 + dt.timedelta(seconds=20)) == 1
    (settlement, revision), = ledger.settlements()
    grid = ledger.readings(T0, revision).channel("home-1", "grid")
    assert (grid.start_source, grid.end_source) == (CounterSource.FIXED_POINT,) * 2
    assert (grid.start_import_kwh, grid.end_import_kwh) == (D("0.1"), D("18.1"))  # 36 kW from T0-10 s
    assert abs(live_kwh - 18.3) < 1e-9  # what a live read 20 s late gives
    line = settlement.member("home-1")
    assert line.grid_import_kwh == D("18")
    assert line.grid_import_jpy == D("18") * HOME1_PRICE == D("577.44")  # by hand; live: 582.252
    assert not [f for f in settlement.flags if f.startswith("fixed_point_missing")]

"""The daemon's PV counters: read from the PV inverters, recorded with each period, never waited for."""

import datetime as dt
from decimal import Decimal as D
from pathlib import Path

from drivers.capabilities import DeviceReading, EnergyCounters, LegReading
from gridctl.config import load_site
from gridctl.daemon.lifecycle.build import LedgerPeriods
from gridctl.daemon.stages.record import Recorder
from gridctl.daemon.stages.snapshot import counter_samples, expected_channels, pv_channels
from gridctl.ledger import Ledger

SITE = load_site(Path(__file__).resolve().parents[2] / "configs" / "misono.yaml")
T0 = dt.datetime(2026, 8, 1, 3, 0, tzinfo=dt.UTC)  # 12:00 JST


def _poll(pv_wh: float, silent_pv: set[str] = frozenset()) -> dict[str, DeviceReading]:
    """Every meter, router leg and PV inverter answering (the inverters in ``silent_pv`` not)."""
    readings: dict[str, DeviceReading] = {}
    for node in SITE.nodes:
        for meter in node.meters:
            readings[meter.id] = DeviceReading(ac_power_kw=0.0, counters=EnergyCounters(10.0, 1.0))
        for pv in node.pv_inverters:
            if pv.id not in silent_pv:
                readings[pv.id] = DeviceReading(ac_power_kw=2.0, counters=EnergyCounters(pv_wh / 1000, None))
        if node.router is not None:
            legs = {leg.id: LegReading(leg.id, 0.0, EnergyCounters(5.0, 5.0), None, None) for leg in node.router.legs}
            readings[node.router.id] = DeviceReading(legs=legs)
    return readings


def test_pv_counter_is_the_inverters_lifetime_energy_and_absent_when_not_read():
    samples = {s.key: (s.import_kwh, s.export_kwh) for s in counter_samples(SITE, _poll(8_120_337.0))}
    assert {k for k in samples if k.endswith("|pv")} == {f"{m}|pv" for m, _ in pv_channels(SITE)}
    assert samples["home-1|pv"] == (8120.337, 0.0)
    silent = {s.key for s in counter_samples(SITE, _poll(1000.0, {"home-1-pv"}))}
    assert "home-1|pv" not in silent and "home-2|pv" in silent  # no partial or guessed counter


def test_a_period_settles_without_waiting_for_pv_and_records_what_was_read(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite", SITE.site.id, clock=lambda: T0)
    recorder = Recorder(expected_channels(SITE), SITE.market.grace_period_s, LedgerPeriods(SITE, ledger),
                        optional_channels=pv_channels(SITE))
    recorder.observe(T0, counter_samples(SITE, _poll(1_000_000.0)))
    end = T0 + dt.timedelta(minutes=30)
    recorder.observe(end, counter_samples(SITE, _poll(1_001_250.0, {"mall-pv"})))  # mall's inverter silent
    assert recorder.settle_due(end) == 1  # the meters are all in: no grace wait for the PV counter
    (settlement, revision), = ledger.settlements()
    readings = ledger.readings(settlement.start_utc, revision)
    assert readings.channel("home-1", "pv").deltas_kwh() == (D("1.25"), D(0))
    assert not readings.channel("mall", "pv").complete  # recorded as not read, never guessed
    assert not any("pv" in flag for flag in settlement.flags)

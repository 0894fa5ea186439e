"""A smart meter's fixed 30-minute counters are the settlement source of its node's grid channel.

The recorder is real and settles into a real SQLite ledger through the daemon's period sink;
polls go through the daemon's own ``counter_samples``. home-1's grid meter keeps fixed-point
counters (ECHONET Lite 0x0288 EPC 0xEA/0xEB): its live samples are taken a few seconds off each
boundary and read a little more than the fixed values stamped exactly on it.
"""

import datetime as dt
import json
from decimal import Decimal as D
from pathlib import Path

from drivers.capabilities import DeviceReading, EnergyCounters, FixedPointCounters, LegReading
from gridctl.config import load_site
from gridctl.daemon.lifecycle.build import LedgerPeriods
from gridctl.daemon.stages.record import Recorder, RecorderState
from gridctl.daemon.stages.snapshot import counter_samples, expected_channels
from gridctl.ledger import Ledger
from gridctl.settlement.model import CounterSource, PeriodReadings

SITE = load_site(Path(__file__).resolve().parents[2] / "configs" / "misono.yaml")
T0 = dt.datetime(2026, 8, 1, 3, 0, tzinfo=dt.UTC)  # 12:00 JST, the first period of the ledger
T1 = T0 + dt.timedelta(minutes=30)
T2 = T1 + dt.timedelta(minutes=30)
S = dt.timedelta(seconds=1)
GRACE = dt.timedelta(seconds=SITE.market.grace_period_s)
JST = dt.timezone(dt.timedelta(hours=9))
#: home-1's import price in the first tier of August 2026 [JPY/kWh]: energy 29.80 + renewable
#: surcharge 3.98 + fuel adjustment -1.70 (configs/misono.yaml, tax included).
HOME1_PRICE = D("29.80") + D("3.98") - D("1.70")


def _poll(live_kwh: float, fixed: FixedPointCounters | None = None) -> dict[str, DeviceReading]:
    """Every meter and router answering with constant counters, except home-1's grid meter:
    ``live_kwh`` imported now, and its last fixed-point counters ``fixed``."""
    readings: dict[str, DeviceReading] = {}
    for node in SITE.nodes:
        for meter in node.meters:
            readings[meter.id] = DeviceReading(ac_power_kw=0.0, counters=EnergyCounters(10.0, 1.0))
        if node.router is not None:
            legs = {leg.id: LegReading(leg.id, 0.0, EnergyCounters(5.0, 5.0), None, None)
                    for leg in node.router.legs}
            readings[node.router.id] = DeviceReading(legs=legs)
    readings["home-1-meter"] = DeviceReading(ac_power_kw=2.5, counters=EnergyCounters(live_kwh, 0.0),
                                             fixed_counters=fixed)
    return readings


def _fixed(at: dt.datetime, kwh: float) -> FixedPointCounters:
    return FixedPointCounters(at_utc=at, supplied_kwh=kwh, absorbed_kwh=0.0)


def _recorder(tmp_path, clock=lambda: T0, state=None):
    ledger = Ledger(tmp_path / "ledger.sqlite", SITE.site.id, clock=clock)
    recorder = Recorder(expected_channels(SITE), SITE.market.grace_period_s, LedgerPeriods(SITE, ledger),
                        state, fixed_channels=[("home-1", "grid")])
    return recorder, ledger


def _observe(recorder: Recorder, at: dt.datetime, live_kwh: float, fixed=None) -> None:
    recorder.observe(at, counter_samples(SITE, _poll(live_kwh, fixed)))


def _settled(ledger: Ledger, start: dt.datetime):
    (settlement, revision), = ledger.settlements(start, start + dt.timedelta(minutes=30))
    return settlement, ledger.readings(start, revision)


def test_a_period_settles_from_the_fixed_counters_not_the_live_samples_off_the_boundary(tmp_path):
    recorder, ledger = _recorder(tmp_path)
    _observe(recorder, T0 + 5 * S, 100.010, _fixed(T0, 100.000))
    _observe(recorder, T1 + 5 * S, 101.262, _fixed(T1.astimezone(JST), 101.250))  # any zone, same instant
    assert recorder.settle_due(T1 + 5 * S) == 1  # every value is in: no grace wait
    settlement, readings = _settled(ledger, T0)
    grid = readings.channel("home-1", "grid")
    assert (grid.start_import_kwh, grid.end_import_kwh) == (D("100.000"), D("101.250"))
    assert (grid.start_source, grid.end_source) == (CounterSource.FIXED_POINT,) * 2
    line = settlement.member("home-1")
    assert line.grid_import_kwh == D("1.25")
    assert line.grid_import_jpy == D("1.25") * HOME1_PRICE == D("40.1000")  # by hand
    assert line.bill_jpy == D("40.1000")
    # The live samples would have billed 1.252 kWh: 40.1642 JPY.
    assert not any(f.startswith("fixed_point_missing") for f in settlement.flags)
    other = readings.channel("home-2", "grid")  # an ordinary meter: a live sample, as before
    assert (other.start_source, other.end_source) == (None, None)
    rows = {(r["member_id"], r["channel"]): r for r in json.loads(readings.to_json())["channels"]}
    assert rows[("home-1", "grid")]["end_source"] == "fixed_point"
    assert "start_source" not in rows[("home-2", "grid")]  # its JSON (and hash) as before
    assert PeriodReadings.from_json(readings.to_json()) == readings


def test_a_fixed_value_published_late_within_grace_is_waited_for_and_used(tmp_path):
    recorder, ledger = _recorder(tmp_path)
    _observe(recorder, T0 + 2 * S, 100.004, _fixed(T0, 100.000))
    _observe(recorder, T1 + 2 * S, 101.254, _fixed(T0, 100.000))  # meter still shows the last point
    assert recorder.settle_due(T1 + 2 * S) == 0
    _observe(recorder, T1 + 60 * S, 101.300, _fixed(T1, 101.250))  # published a minute late
    assert recorder.settle_due(T1 + 60 * S) == 1
    settlement, readings = _settled(ledger, T0)
    grid = readings.channel("home-1", "grid")
    assert grid.deltas_kwh() == (D("1.250"), D(0)) and grid.end_source is CounterSource.FIXED_POINT
    assert settlement.member("home-1").grid_import_jpy == D("40.1000")


def test_missing_past_grace_falls_back_to_the_live_rule_and_flags_both_periods(tmp_path):
    recorder, ledger = _recorder(tmp_path)
    _observe(recorder, T0 + 2 * S, 100.004, _fixed(T0, 100.000))
    # Through the grace time the meter shows only the previous fixed point: never used for T1.
    for seconds in (3, 40, 119):
        _observe(recorder, T1 + seconds * S, 101.254 + seconds / 1000, _fixed(T0, 100.000))
        assert recorder.settle_due(T1 + seconds * S) == 0
    _observe(recorder, T1 + GRACE, 101.400, _fixed(T0, 100.000))
    assert recorder.settle_due(T1 + GRACE) == 1
    settlement, readings = _settled(ledger, T0)
    grid = readings.channel("home-1", "grid")
    assert (grid.start_import_kwh, grid.end_import_kwh) == (D("100.000"), D("101.257"))  # first live
    assert (grid.start_source, grid.end_source) == (CounterSource.FIXED_POINT, CounterSource.LIVE_FALLBACK)
    assert "fixed_point_missing:home-1" in settlement.flags
    assert not [f for f in settlement.flags if f.startswith("missing:")]
    # T1's value arrives too late to change it: the next period starts where this one ended.
    _observe(recorder, T1 + 10 * 60 * S, 101.600, _fixed(T1, 101.250))
    _observe(recorder, T2 + 3 * S, 102.900, _fixed(T2, 102.800))
    assert recorder.settle_due(T2 + 3 * S) == 1
    settlement2, readings2 = _settled(ledger, T1)
    grid2 = readings2.channel("home-1", "grid")
    assert grid2.start_import_kwh == D("101.257") and grid2.end_import_kwh == D("102.800")
    assert (grid2.start_source, grid2.end_source) == (CounterSource.LIVE_FALLBACK, CounterSource.FIXED_POINT)
    assert "fixed_point_missing:home-1" in settlement2.flags


def test_a_fixed_value_for_the_boundary_survives_a_restart_of_the_recorder(tmp_path):
    recorder, ledger = _recorder(tmp_path)
    _observe(recorder, T0 + 2 * S, 100.004, _fixed(T0, 100.000))
    _observe(recorder, T1 + 2 * S, 101.254, _fixed(T1, 101.250))
    saved = recorder.state.to_json()
    ledger.close()
    restarted, ledger = _recorder(tmp_path, state=RecorderState.from_json(saved))
    assert restarted.settle_due(T1 + 3 * S) == 1
    readings = _settled(ledger, T0)[1]
    assert readings.channel("home-1", "grid").deltas_kwh() == (D("1.250"), D(0))
    # An older state file (before fixed-point counters) still loads.
    old = RecorderState.from_json('{"open_start":null,"boundaries":{},"pending":[],"last_settled":null}')
    assert old.fixed == {} and old.sources == {}

"""Physics of the single-device plant models (hand-checked numbers)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.plant.devices import (
    BatterySpec,
    BatteryState,
    CounterPair,
    PvSpec,
    PvState,
    RouterLegSpec,
    battery_power_limits_kw,
    leg_power_kw,
    meter_power_kw,
    step_battery,
    step_counters,
    step_pv,
)

SPEC = BatterySpec(capacity_kwh=10.0, max_charge_kw=4.0, max_discharge_kw=5.0, charge_efficiency=0.9,
                   discharge_efficiency=0.8, self_discharge_pct_per_day=0.0, soc_min_pct=10.0, soc_max_pct=90.0)


def test_discharge_one_hour_by_hand() -> None:
    state = step_battery(SPEC, BatteryState(stored_kwh=8.0), setpoint_kw=2.0, dt_s=3600.0)
    # 2 kWh delivered at 80 % efficiency takes 2.5 kWh from the cells
    assert state.stored_kwh == pytest.approx(5.5)
    assert state.power_kw == pytest.approx(2.0)
    assert state.discharged_kwh == pytest.approx(2.0) and state.charged_kwh == 0.0


def test_charge_one_hour_by_hand() -> None:
    state = step_battery(SPEC, BatteryState(stored_kwh=2.0), setpoint_kw=-3.0, dt_s=3600.0)
    assert state.stored_kwh == pytest.approx(2.0 + 3.0 * 0.9)
    assert state.charged_kwh == pytest.approx(3.0) and state.power_kw == pytest.approx(-3.0)


def test_power_is_clamped_by_rating_and_soc_window() -> None:
    assert step_battery(SPEC, BatteryState(5.0), 50.0, 1.0).power_kw == pytest.approx(5.0)
    assert step_battery(SPEC, BatteryState(5.0), -50.0, 1.0).power_kw == pytest.approx(-4.0)
    # 0.5 kWh above the floor: over one hour at most 0.5*0.8 kW can come out
    low, high = battery_power_limits_kw(SPEC, BatteryState(1.5), 3600.0)
    assert high == pytest.approx(0.4) and low == pytest.approx(-4.0)
    assert step_battery(SPEC, BatteryState(9.0), -1.0, 3600.0).power_kw == pytest.approx(0.0)


def test_self_discharge() -> None:
    spec = BatterySpec(10.0, 1.0, 1.0, self_discharge_pct_per_day=2.0)
    state = step_battery(spec, BatteryState(5.0), 0.0, 86400.0)
    assert state.stored_kwh == pytest.approx(4.9)


@given(st.lists(st.tuples(st.floats(-10, 10), st.floats(0.1, 900.0)), max_size=30))
def test_counters_monotonic_and_soc_within_window(steps) -> None:
    state = BatteryState(stored_kwh=5.0)
    for setpoint, dt in steps:
        new = step_battery(SPEC, state, setpoint, dt)
        assert new.charged_kwh >= state.charged_kwh and new.discharged_kwh >= state.discharged_kwh
        assert 1.0 - 1e-9 <= new.stored_kwh <= 9.0 + 1e-9
        state = new


def test_pv_follows_min_of_available_rating_and_limit() -> None:
    spec = PvSpec(4.5)
    assert step_pv(spec, PvState(), 3.0, None, 3600.0).power_kw == pytest.approx(3.0)
    assert step_pv(spec, PvState(), 6.0, None, 3600.0).power_kw == pytest.approx(4.5)
    state = step_pv(spec, PvState(0.0, 10.0), 3.0, 1.0, 1800.0)
    assert state.power_kw == pytest.approx(1.0) and state.produced_kwh == pytest.approx(10.5)
    assert step_pv(spec, PvState(), -1.0, None, 60.0).power_kw == 0.0


def test_counters_split_by_direction() -> None:
    c = step_counters(CounterPair(), 2.0, 1800.0)
    c = step_counters(c, -4.0, 900.0)
    assert (c.import_kwh, c.export_kwh, c.power_kw) == pytest.approx((1.0, 1.0, -4.0))


def test_leg_clamp_and_node_balance() -> None:
    assert leg_power_kw(RouterLegSpec("pv", 4.5), 6.0) == 4.5
    assert leg_power_kw(RouterLegSpec("grid", 10.0), -12.0) == -10.0
    assert meter_power_kw(load_kw=2.0, pv_kw=3.0, battery_kw=-0.5) == pytest.approx(-0.5)

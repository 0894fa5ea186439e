"""Restart safety: mode, plan, reserve and period boundaries survive; nothing lost or doubled."""

from __future__ import annotations

import datetime as dt

from gridctl.controller.types import Mode
from gridctl.daemon.lifecycle.operator import Command

from .conftest import fast_site
from .test_cycle_table import assert_periods_contiguous, outside_limits, period_starts, run_cycles


async def test_restart_resumes_state_and_settles_each_period_once(make_daemon, plant):
    site = fast_site(poll_period_s=10.0, setpoint_expiry_s=30.0, replan_period_s=600)
    first, ledger = make_daemon(site)
    await run_cycles(first, 200)  # 33 min
    until = plant.clock.now() + dt.timedelta(days=1)
    await first.handle(Command("reserve", hours_h=48.0, at=until))
    await first.handle(Command("island", at=plant.clock.now() + dt.timedelta(days=2)))
    await run_cycles(first, 50)
    plan_before = first.cycle.state.plan
    assert plan_before is not None
    await first.shutdown()
    settled_before = period_starts(ledger)
    ledger.close()

    plant.clock.advance(40)  # the restart takes 40 s
    second, ledger = make_daemon(site)
    state = second.cycle.state
    assert state.reserve_request is not None and state.reserve_request.hours_h == 48.0
    assert [w.reason for w in state.outage_windows] == ["operator"]
    assert state.plan is not None and state.plan.n_steps == plan_before.n_steps
    assert second.cycle.recorder.state.open_start is not None
    reports = await run_cycles(second, 3)
    # No burst after the restart: every write within the device limits, from the first cycle.
    assert not [b for r in reports for b in outside_limits(site, r)]
    await run_cycles(second, 400)
    assert second.cycle.state.mode is Mode.GRID_CONNECTED
    assert period_starts(ledger)[: len(settled_before)] == settled_before
    assert len(period_starts(ledger)) > len(settled_before)
    assert_periods_contiguous(ledger)
    # The period spanning the restart was settled from counters read before and after it.
    spanning = [s for s, _r in ledger.settlements() if s.start_utc == settled_before[-1] +
                dt.timedelta(minutes=30)]
    assert spanning and not [f for f in spanning[0].flags if f.startswith("missing:")]


async def test_unreadable_state_starts_fresh_and_safe(make_daemon, plant):
    site = fast_site()
    first, ledger = make_daemon(site)
    await run_cycles(first, 4)
    await first.shutdown()
    ledger.state_put("daemon.controller_state", "{not json")
    ledger.close()
    second, _ledger = make_daemon(site)
    assert second.cycle.state.mode is Mode.GRID_CONNECTED and second.cycle.state.plan is None
    reports = await run_cycles(second, 4)
    assert all(r.healthy for r in reports)


async def test_failing_settlement_is_retried_without_losing_control(make_daemon, plant):
    site = fast_site(poll_period_s=10.0, setpoint_expiry_s=30.0)
    daemon, ledger = make_daemon(site)
    real_settle = daemon.cycle.recorder.sink.settle
    calls = []

    def flaky(readings):  # the first attempts fail as a full disk would
        calls.append(readings.start_utc)
        if len(calls) <= 3:
            raise OSError(28, "No space left on device")
        real_settle(readings)

    daemon.cycle.recorder.sink.settle = flaky
    reports = await run_cycles(daemon, 400)
    assert all(r.healthy for r in reports)  # control never stopped; the watchdog kept going
    assert calls[0] == calls[1] == calls[2] == calls[3]  # the same period, retried until done
    assert daemon.cycle.recorder.last_error is None
    assert_periods_contiguous(ledger)


async def test_forecast_history_survives_a_restart(make_daemon, plant, tmp_path):
    import numpy as np

    site = fast_site(poll_period_s=60.0, setpoint_expiry_s=180.0, replan_period_s=1800)
    first, ledger = make_daemon(site)
    await run_cycles(first, 3 * 60)  # 3 h of history: PV at half rating, load 2 kW per node
    history = first.cycle.forecaster.history
    bins = np.arange(history.bin_of(plant.clock.now()) - 11, history.bin_of(plant.clock.now()))
    before = {q: history.values(q, bins) for q in ("pv_kw", "load_kw")}
    assert not np.isnan(before["pv_kw"]).any() and np.allclose(before["load_kw"], 2.0)
    await first.shutdown()
    ledger.close()

    plant.clock.advance(120)
    second, ledger = make_daemon(site)
    after = second.cycle.forecaster.history
    for q, values in before.items():
        assert np.allclose(after.values(q, bins), values, atol=1e-3), q
    ledger.close()

    fresh, _l = make_daemon(site, ledger_path=tmp_path / "other.sqlite")  # nothing saved there
    assert np.isnan(fresh.cycle.forecaster.history.values("pv_kw", bins)).all()

"""Cycle tables: the daemon with a manual clock, the real core, optimizer and ledger."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading

from gridctl.config.policy import InfluxV1
from gridctl.controller.types import Mode, SetpointKind
from gridctl.daemon import ManualClock
from gridctl.ledger.verify import verify_ledger

from .conftest import START, fast_site


def outside_limits(site, report) -> list[str]:
    """Every written setpoint outside its device's ratings, as messages."""
    devices = {d.id: d for _n, d in site.all_devices()}
    bad = []
    for sp, value in report.setpoints:
        d = devices[sp.device_id]
        if sp.kind is SetpointKind.BATTERY_KW:
            ok = -d.rating.max_charge_kw - 1e-9 <= value <= d.rating.max_discharge_kw + 1e-9
        elif sp.kind is SetpointKind.PV_LIMIT_KW:
            ok = -1e-9 <= value <= d.rating.ac_kw + 1e-9
        else:
            cap = next(leg.capacity_kw for leg in d.legs if leg.id == sp.leg_id)
            ok = abs(value) <= cap + 1e-9
        if not ok:
            bad.append(f"{sp.device_id} {sp.kind.value}={value}")
    return bad


def period_starts(ledger) -> list[dt.datetime]:
    return [s.start_utc for s, _rev in ledger.settlements()]


def assert_periods_contiguous(ledger) -> None:
    starts = period_starts(ledger)
    assert starts, "no period settled"
    assert len(starts) == len(set(starts)), "a period was settled twice"
    assert starts == [starts[0] + dt.timedelta(minutes=30) * i for i in range(len(starts))], starts
    report = verify_ledger(ledger)
    assert report.ok, report.problem


async def run_cycles(daemon, n: int) -> list:
    reports = []
    for _ in range(n):
        reports.append(await daemon.cycle.run_once())
        daemon._after_cycle(reports[-1], False)
        await daemon.parts.clock.sleep(daemon.parts.site.control.poll_period_s)
    return reports


async def test_cycles_decide_write_heartbeat_and_settle(make_daemon, plant):
    daemon, ledger = make_daemon(fast_site(poll_period_s=10.0, setpoint_expiry_s=30.0))
    reports = []
    await daemon.run(duration_s=2 * 3600, on_cycle=reports.append)
    assert all(d is not None for d in reports[0].device_faults.values())  # connecting
    assert all(r.healthy for r in reports), [r.stage_faults for r in reports if not r.healthy][:3]
    assert not [b for r in reports for b in outside_limits(daemon.parts.site, r)]
    assert any(r.setpoints for r in reports)
    assert plant.heartbeats and all(n > 500 for n in plant.heartbeats.values())
    assert daemon.cycle.state.plan is not None and daemon.planner.stats.finished > 0
    assert any(r.decision and not r.decision.used_fallback for r in reports)
    assert_periods_contiguous(ledger)
    assert len(period_starts(ledger)) >= 3
    assert ledger.outbox_backlog()[0] > 0  # settlement points and telemetry queued


async def test_device_disconnect_is_isolated_and_heals(make_daemon, plant):
    daemon, _ledger = make_daemon()
    await run_cycles(daemon, 5)
    plant.failing.add("home-1-battery")
    before, solves = len(plant.writes), daemon.planner.stats.started
    reports = await run_cycles(daemon, 4)
    for _ in range(100):  # the worker may still be busy with the last solve (real time)
        if daemon.planner.stats.started > solves:
            break
        await asyncio.sleep(0.05)
        await run_cycles(daemon, 1)
    assert daemon.planner.stats.started > solves  # re-planned without the lost battery
    first = reports[0]
    assert first.device_faults["home-1-battery"] is not None  # faulted in the same cycle
    assert all(r.healthy for r in reports)  # the rest of the block is still controlled
    assert not any(sp.device_id == "home-1-battery" for r in reports[1:] for sp, _v in r.setpoints)
    assert any(w[0] == "home-2-battery" for w in plant.writes[before:])
    plant.failing.clear()
    reports = await run_cycles(daemon, 20)  # backoff 1, 2, 4 s: back within 10 s
    assert reports[-1].device_faults["home-1-battery"] is None
    assert any(sp.device_id == "home-1-battery" for sp, _v in reports[-1].setpoints)


async def test_garbage_and_hanging_devices_fault_alone(make_daemon, plant):
    daemon, _ledger = make_daemon()
    await run_cycles(daemon, 3)
    plant.garbage.add("home-2-meter")
    plant.hanging.add("home-3-pv")
    reports = await run_cycles(daemon, 3)
    assert "ValueError" in reports[0].device_faults["home-2-meter"]
    assert "timed out" in reports[0].device_faults["home-3-pv"]
    assert all(r.healthy and r.decision is not None for r in reports)
    assert not [b for r in reports for b in outside_limits(daemon.parts.site, r)]


async def test_grid_loss_islands_within_one_cycle_and_reconnects_after_delay(make_daemon, plant):
    site = fast_site()
    # InfluxDB configured (unreachable, nothing sends): transitions wait in the outbox for it.
    influx = InfluxV1(version=1, url="http://127.0.0.1:9", database="gridctl")
    site = site.model_copy(update={
        "islanding": site.islanding.model_copy(update={"reconnect_delay_s": 20}),
        "storage": site.storage.model_copy(update={"influxdb": influx})})
    daemon, ledger = make_daemon(site, shipper=None)
    await run_cycles(daemon, 4)
    plant.grid_connected = False
    reports = await run_cycles(daemon, 1)
    assert daemon.cycle.state.mode is Mode.ISLANDED
    assert reports[0].decision.setpoints.grid_tie_open
    reports += await run_cycles(daemon, 10)
    assert all(r.healthy for r in reports)
    assert not [b for r in reports for b in outside_limits(site, r)]
    plant.grid_connected = True
    await run_cycles(daemon, 2)
    assert daemon.cycle.state.mode is Mode.RECONNECTING
    await run_cycles(daemon, 10)  # 5 s: still waiting
    assert daemon.cycle.state.mode is Mode.RECONNECTING
    await run_cycles(daemon, 40)  # 20 s more: the delay has passed
    assert daemon.cycle.state.mode is Mode.GRID_CONNECTED
    moves = [(a, b) for _t, a, b, _n in daemon.cycle.transitions]
    assert moves == [("grid_connected", "islanded"), ("islanded", "reconnecting"),
                     ("reconnecting", "grid_connected")]
    recorded = [line for _id, line in ledger.outbox_peek(100000) if "transition_to=" in line]
    assert [line.split('transition_to="')[1].split('"')[0] for line in recorded] == [
        "islanded", "reconnecting", "grid_connected"]


async def test_hung_solver_is_abandoned_and_control_goes_on(make_daemon, plant):
    release = threading.Event()

    def hung_solve(problem):  # stands in for a solver stuck past its time limit
        release.wait(30)
        raise RuntimeError("released")

    plant.clock.work_wait_s = 0  # the solver is stuck: manual time runs on without it
    daemon, _ledger = make_daemon(solve=hung_solve)
    deadline_s = daemon.planner.deadline_s
    await run_cycles(daemon, 1)  # devices connect in the background during the first cycle
    reports = await run_cycles(daemon, int(deadline_s / 0.5) + 4)
    assert daemon.planner.stats.timed_out == 1
    assert "deadline" in daemon.planner.fault
    assert all(r.healthy and r.decision.used_fallback for r in reports)
    assert not [b for r in reports for b in outside_limits(daemon.parts.site, r)]
    release.set()


async def test_failing_decide_releases_devices_and_withholds_watchdog(make_daemon, plant, tmp_path,
                                                                     monkeypatch):
    import gridctl.controller.loop
    from gridctl.daemon.lifecycle.notify import Notifier

    def broken_decide(*_args):
        raise ArithmeticError("bad step")

    monkeypatch.setattr(gridctl.controller.loop, "decide", broken_decide)
    daemon, _ledger = make_daemon(notifier=Notifier(""))
    reports = await run_cycles(daemon, 3)
    assert all("control" in r.stage_faults and r.released and not r.healthy for r in reports)
    assert ("home-1-battery", "battery_kw", None) in plant.writes  # handed back to the device


async def test_clock_jumps_neither_lose_nor_double_periods(make_daemon, plant):
    # Re-plans every 10 min: the periods are the subject here, and each solve costs real time.
    daemon, ledger = make_daemon(fast_site(poll_period_s=10.0, setpoint_expiry_s=30.0,
                                           replan_period_s=600))
    clock: ManualClock = plant.clock
    await run_cycles(daemon, 540)  # 1.5 h: wall 03:30 UTC
    clock.jump(2 * 3600)  # NTP steps forward 2 h: 05:30
    await run_cycles(daemon, 90)  # 15 min: 05:45
    clock.jump(-3 * 3600)  # and back 3 h: 02:45
    reports = await run_cycles(daemon, 180)  # 30 min: 03:15
    clock.jump(3600)  # 04:15
    await run_cycles(daemon, 540)  # 1.5 h: 05:45
    assert all(r.healthy for r in reports)
    assert_periods_contiguous(ledger)
    # Settled up to the period before the open one (05:30), none twice, none skipped.
    assert period_starts(ledger)[-1] == dt.datetime(2026, 8, 3, 5, 0, tzinfo=dt.UTC)


async def test_real_solver_hitting_its_time_limit_keeps_control(make_daemon, plant):
    site = fast_site(poll_period_s=10.0, setpoint_expiry_s=30.0, horizon_h=24.0,
                     solver_time_limit_s=0.001, replan_period_s=60)
    daemon, ledger = make_daemon(site)
    reports = await run_cycles(daemon, 2)
    for _ in range(200):  # real HiGHS in the worker: give it real time to give up
        if daemon.planner.stats.finished:
            break
        await asyncio.sleep(0.05)
        reports += await run_cycles(daemon, 1)
    reports += await run_cycles(daemon, 30)
    plan = daemon.cycle.state.plan
    # 1 ms is too short for HiGHS: the plan is the optimizer's rule-based fallback, a value.
    assert plan is not None and plan.status.value in ("time_limit_feasible", "fallback")
    assert any("Time limit" in note for note in plan.notes) or plan.status.value != "fallback"
    assert all(r.healthy and r.decision is not None for r in reports)
    assert not [b for r in reports for b in outside_limits(site, r)]


async def test_wall_clock_two_days_ahead_shows_in_status_and_settles_nothing_early(make_daemon, plant):
    daemon, ledger = make_daemon(fast_site(poll_period_s=10.0, setpoint_expiry_s=30.0,
                                           replan_period_s=600))
    clock: ManualClock = plant.clock
    await run_cycles(daemon, 200)  # 02:33: the 02:00 period is open until 02:30 + grace
    before = period_starts(ledger)
    clock.jump(2 * 86400)
    await run_cycles(daemon, 6)  # a minute two days ahead
    seen = daemon.status()["clock"]
    assert (seen["wall_ok"], seen["jump_s"]) == (False, 172800.0)
    assert seen["trusted_utc"] < "2026-08-03T02:35"  # settling by the monotonic clock
    assert period_starts(ledger) == before and daemon.cycle.recorder.backlog() <= 1
    clock.jump(-2 * 86400)
    await run_cycles(daemon, 360)  # 03:35
    assert daemon.status()["clock"]["wall_ok"]
    assert_periods_contiguous(ledger)
    assert period_starts(ledger)[-1] == dt.datetime(2026, 8, 3, 3, 0, tzinfo=dt.UTC)

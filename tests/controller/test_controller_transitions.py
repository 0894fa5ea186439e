"""The mode state machine as cycle tables with an injected clock."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from gridctl.controller import (
    GridSignal,
    Mode,
    NodeReading,
    OutageWindow,
    ReserveRequest,
    accept_plan,
    grid_signal,
    initial_state,
    transition,
)
from tests.controller.sitekit import plan_with, snapshot

T0 = dt.datetime(2026, 8, 3, 3, 0, tzinfo=dt.timezone.utc)

#: Readings at every node: grid present and in band, tie flow as given.
OK = "ok"
#: Routers report the grid gone.
LOST = "lost"
#: Routers answer nothing about the grid.
SILENT = "silent"
#: Grid present but voltage out of band at one node.
LOW_V = "low_v"


def _readings(site, grid: str, tie_kw: float | None = 1.0):
    out = {}
    for node in site.nodes:
        if grid == OK:
            r = NodeReading(grid_kw=tie_kw, grid_available=True, grid_voltage_v=202.0,
                            grid_frequency_hz=50.0)
        elif grid == LOST:
            r = NodeReading(grid_kw=tie_kw, grid_available=False)
        elif grid == LOW_V:
            low = node.id == "home-3"
            r = NodeReading(grid_kw=tie_kw, grid_available=True,
                            grid_voltage_v=170.0 if low else 202.0)
        else:
            r = NodeReading(grid_kw=tie_kw)
        out[node.id] = r
    return out


def _run(site, table, state):
    """Drive ``transition`` through rows of (seconds after T0, grid, tie kW, expected mode)."""
    for seconds, grid, tie_kw, expected in table:
        now = T0 + dt.timedelta(seconds=seconds)
        result = transition(site, state, snapshot(site, now, _readings(site, grid, tie_kw)), now)
        assert result.state.mode is expected, (seconds, grid, result.notes)
        assert result.changed is (expected is not state.mode)
        state = result.state
    return state


def test_unplanned_islanding_and_reconnection_after_the_delay(misono):
    table = [
        (0, OK, 2.0, Mode.GRID_CONNECTED),
        (2, OK, 0.0, Mode.GRID_CONNECTED),         # 0 W at the meters is not an outage
        (4, SILENT, 0.0, Mode.GRID_CONNECTED),     # nor is silence
        (6, LOST, 0.0, Mode.ISLANDED),             # the routers say so: island
        (8, LOST, 0.0, Mode.ISLANDED),
        (10, OK, 0.0, Mode.RECONNECTING),          # back: start the 300 s wait
        (200, OK, 0.0, Mode.RECONNECTING),
        (309, OK, 0.0, Mode.RECONNECTING),         # 299 s healthy
        (310, OK, 0.0, Mode.GRID_CONNECTED),       # 300 s healthy
    ]
    _run(misono, table, initial_state(T0))


def test_the_tie_does_not_close_onto_switched_off_load(misono):
    """Reconnecting waits, past the delay, until no load tier is switched off (the switch state
    machine restores them while still islanded), so load is never shed while the grid is up."""
    from gridctl.controller.switches import ShedState

    state = _run(misono, [(0, LOST, 0.0, Mode.ISLANDED), (10, OK, 0.0, Mode.RECONNECTING)],
                 initial_state(T0))
    state = replace(state, shedding=ShedState(off_tiers=(3,)))
    now = T0 + dt.timedelta(seconds=320)
    held = transition(misono, state, snapshot(misono, now, _readings(misono, OK, 0.0)), now)
    assert held.state.mode is Mode.RECONNECTING and not held.changed
    assert any("tier(s) [3] still shed" in n for n in held.notes)
    state = replace(held.state, shedding=ShedState(unconfirmed=frozenset({("store-relay", 0)})))
    unconfirmed = transition(misono, state, snapshot(misono, now, _readings(misono, OK, 0.0)), now)
    assert unconfirmed.state.mode is Mode.RECONNECTING  # restored, but not yet seen connected
    state = replace(held.state, shedding=ShedState())
    done = transition(misono, state, snapshot(misono, now, _readings(misono, OK, 0.0)), now)
    assert done.state.mode is Mode.GRID_CONNECTED


def test_a_flicker_restarts_the_reconnect_delay(misono):
    table = [
        (0, LOST, 0.0, Mode.ISLANDED),
        (10, OK, 0.0, Mode.RECONNECTING),
        (200, LOW_V, 0.0, Mode.ISLANDED),          # voltage out of band at one router
        (202, OK, 0.0, Mode.RECONNECTING),
        (310, OK, 0.0, Mode.RECONNECTING),         # would have been enough without the flicker
        (501, OK, 0.0, Mode.RECONNECTING),
        (502, OK, 0.0, Mode.GRID_CONNECTED),
    ]
    _run(misono, table, initial_state(T0))


def test_silence_while_reconnecting_is_not_healthy(misono):
    table = [
        (0, LOST, 0.0, Mode.ISLANDED),
        (5, OK, 0.0, Mode.RECONNECTING),
        (100, SILENT, 0.0, Mode.ISLANDED),
        (400, SILENT, 0.0, Mode.ISLANDED),         # no signal, no reconnection
    ]
    _run(misono, table, initial_state(T0))


def test_planned_islanding_drives_the_ties_to_zero_then_opens(misono):
    window = OutageWindow(T0 + dt.timedelta(minutes=30), T0 + dt.timedelta(minutes=90), "works")
    state = replace(initial_state(T0), outage_windows=(window,))
    table = [
        (0, OK, 3.0, Mode.GRID_CONNECTED),
        (14 * 60, OK, 3.0, Mode.GRID_CONNECTED),   # window 16 min away: not yet
        (15 * 60, OK, 3.0, Mode.PLANNED_ISLANDING),  # one plan step ahead
        (16 * 60, OK, 0.5, Mode.PLANNED_ISLANDING),  # 0.5 kW > max(0.1, 2 % of 5 kW) somewhere
        (17 * 60, OK, 0.05, Mode.ISLANDED),        # every tie about zero: open
        (60 * 60, OK, 0.0, Mode.ISLANDED),         # inside the window the grid may look fine
        (90 * 60, OK, 0.0, Mode.RECONNECTING),
        (95 * 60, OK, 0.0, Mode.GRID_CONNECTED),
    ]
    state = _run(misono, table, state)
    assert state.outage_windows == ()  # the window has ended and is forgotten


def test_planned_islanding_opens_at_the_window_start_regardless(misono):
    window = OutageWindow(T0 + dt.timedelta(minutes=10), T0 + dt.timedelta(minutes=60))
    state = replace(initial_state(T0), outage_windows=(window,))
    table = [
        (0, OK, 3.0, Mode.PLANNED_ISLANDING),
        (9 * 60, OK, 3.0, Mode.PLANNED_ISLANDING),
        (10 * 60, OK, 3.0, Mode.ISLANDED),
    ]
    _run(misono, table, state)


def test_withdrawn_warning_returns_to_grid_connected(misono):
    window = OutageWindow(T0 + dt.timedelta(minutes=10), T0 + dt.timedelta(minutes=60))
    state = _run(misono, [(0, OK, 3.0, Mode.PLANNED_ISLANDING)],
                 replace(initial_state(T0), outage_windows=(window,)))
    state = replace(state, outage_windows=())
    _run(misono, [(60, OK, 3.0, Mode.GRID_CONNECTED)], state)


def test_grid_lost_during_planned_islanding_opens_at_once(misono):
    window = OutageWindow(T0 + dt.timedelta(minutes=10), T0 + dt.timedelta(minutes=60))
    state = replace(initial_state(T0), outage_windows=(window,))
    _run(misono, [(0, OK, 3.0, Mode.PLANNED_ISLANDING), (5, LOST, 3.0, Mode.ISLANDED)], state)


def test_mode_change_drops_the_plan_and_same_mode_keeps_it(misono):
    state = accept_plan(initial_state(T0), plan_with(misono), T0, T0)
    same = transition(misono, state, snapshot(misono, T0, _readings(misono, OK)), T0)
    assert same.state is state and same.state.plan is not None
    lost = transition(misono, state, snapshot(misono, T0, _readings(misono, LOST)), T0)
    assert lost.changed and lost.state.plan is None and lost.state.mode_since_utc == T0
    assert "unplanned" in lost.notes[-1]


def test_lapsed_reserve_request_is_forgotten(misono):
    state = replace(initial_state(T0), reserve_request=ReserveRequest(24.0, T0 + dt.timedelta(
        hours=1)))
    later = T0 + dt.timedelta(hours=1)
    kept = transition(misono, state, snapshot(misono, T0, _readings(misono, OK)), T0)
    gone = transition(misono, state, snapshot(misono, later, _readings(misono, OK)), later)
    assert kept.state.reserve_request is not None and gone.state.reserve_request is None


@pytest.mark.parametrize("grid, expected", [
    (OK, GridSignal.HEALTHY), (LOST, GridSignal.LOST), (SILENT, GridSignal.UNKNOWN),
    (LOW_V, GridSignal.LOST)])
def test_grid_signal(misono, grid, expected):
    signal, notes = grid_signal(misono, snapshot(misono, T0, _readings(misono, grid)))
    assert signal is expected
    if grid == LOW_V:
        assert notes == ("home-3: grid voltage 170 V out of band",)


def test_frequency_out_of_band_is_lost(misono):
    readings = _readings(misono, OK)
    readings["mall"] = NodeReading(grid_available=True, grid_frequency_hz=49.2)
    signal, notes = grid_signal(misono, snapshot(misono, T0, readings))
    assert signal is GridSignal.LOST and "49.2 Hz" in notes[0]

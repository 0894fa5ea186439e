"""The mode state machine (IEEE 2030.7 transition function), as pure functions.

::

    GRID_CONNECTED --grid signal LOST--------------------------------> ISLANDED (unplanned)
    GRID_CONNECTED --warned outage within one plan step--------------> PLANNED_ISLANDING
    PLANNED_ISLANDING --every grid tie ~0 kW, or window started,
                        or grid signal LOST---------------------------> ISLANDED
    PLANNED_ISLANDING --warning withdrawn----------------------------> GRID_CONNECTED
    ISLANDED --grid signal HEALTHY, no warned window under way--------> RECONNECTING
    RECONNECTING --signal not HEALTHY--------------------------------> ISLANDED
    RECONNECTING --HEALTHY for reconnect_delay_s, no tier switched off-> GRID_CONNECTED

Unplanned islanding is triggered only by an explicit grid-state signal from the routers
(``grid_available`` False, or voltage/frequency outside the configured band), never by 0 W at
a meter: a meter reads 0 W whenever import and export happen to balance.  An UNKNOWN signal
changes nothing.  On every mode change the plan is dropped, because it assumed the old grid
availability; the controller then runs the fallback until the next re-plan.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from gridctl.config import SiteConfig
from gridctl.controller.types import (
    BillingState,
    ControllerState,
    GridSignal,
    Mode,
    OutageWindow,
    Snapshot,
    Transition,
)

__all__ = ["grid_signal", "initial_state", "reconnect_at", "tie_flow_settled", "transition"]

#: Grid-tie flow regarded as zero before opening [kW]: the larger of this and 2 % of the
#: node's import limit (meters and converters are not exact).
_TIE_ZERO_KW = 0.1
_TIE_ZERO_SHARE = 0.02


def initial_state(now: dt.datetime, mode: Mode = Mode.GRID_CONNECTED,
                  billing: BillingState | None = None) -> ControllerState:
    """The state at start-up: ``mode`` since ``now``, no plan, the given billing context
    (see :func:`gridctl.controller.billing.opening_billing`)."""
    return ControllerState(mode=mode, mode_since_utc=now, billing=billing or BillingState())


def grid_signal(site: SiteConfig, snapshot: Snapshot) -> tuple[GridSignal, tuple[str, ...]]:
    """Combine the routers' grid-state signals into one.

    LOST when any router says the grid is absent or reports voltage or frequency outside
    ``islanding.voltage_limits`` / ``frequency_limits``; HEALTHY when at least one says it is
    present and none says otherwise; UNKNOWN when no router answered.
    """
    isl = site.islanding
    lost: list[str] = []
    present = 0
    for node in site.nodes:
        if node.grid is None or node.router is None:
            continue
        r = snapshot.node(node.id)
        if r.grid_available is False:
            lost.append(f"{node.id}: router reports no grid")
        elif r.grid_voltage_v is not None and not (
                isl.voltage_limits.min_v <= r.grid_voltage_v <= isl.voltage_limits.max_v):
            lost.append(f"{node.id}: grid voltage {r.grid_voltage_v:g} V out of band")
        elif r.grid_frequency_hz is not None and not (
                isl.frequency_limits.min_hz <= r.grid_frequency_hz <= isl.frequency_limits.max_hz):
            lost.append(f"{node.id}: grid frequency {r.grid_frequency_hz:g} Hz out of band")
        elif r.grid_available is True:
            present += 1
    if lost:
        return GridSignal.LOST, tuple(lost)
    if present:
        return GridSignal.HEALTHY, ()
    return GridSignal.UNKNOWN, ("no router reported the grid state",)


def tie_flow_settled(site: SiteConfig, snapshot: Snapshot) -> bool:
    """True when every grid-connected node's measured ``|grid_kw|`` is about zero."""
    for node in site.nodes:
        if node.grid is None:
            continue
        grid_kw = snapshot.node(node.id).grid_kw
        tolerance = max(_TIE_ZERO_KW, _TIE_ZERO_SHARE * node.grid.import_limit_kw)
        if grid_kw is None or abs(grid_kw) > tolerance:
            return False
    return True


def transition(site: SiteConfig, state: ControllerState, snapshot: Snapshot,
               now: dt.datetime) -> Transition:
    """One step of the mode state machine at ``now``.

    Also forgets warned windows that have ended and a lapsed reserve request.

    Returns
    -------
    Transition
        The new state (the same object when nothing at all changed), the grid signal, whether
        the mode changed, and notes.
    """
    signal, notes = grid_signal(site, snapshot)
    state = _expire(state, now)
    new_mode, why = _next_mode(site, state, snapshot, signal, now)
    healthy_since = None
    if new_mode is Mode.RECONNECTING:
        # The reconnect delay counts from the moment reconnection started.
        healthy_since = (state.grid_healthy_since_utc
                         if state.mode is Mode.RECONNECTING and state.grid_healthy_since_utc
                         else now)
    if new_mode is state.mode:
        if healthy_since != state.grid_healthy_since_utc:
            state = replace(state, grid_healthy_since_utc=healthy_since)
        return Transition(state, signal, False, notes + ((why,) if why else ()))
    state = replace(state, mode=new_mode, mode_since_utc=now, plan=None, plan_start_utc=None,
                    plan_made_at_utc=None, grid_healthy_since_utc=healthy_since)
    return Transition(state, signal, True, notes + (why,))


def reconnect_at(site: SiteConfig, state: ControllerState, now: dt.datetime) -> dt.datetime:
    """When the tie may close while reconnecting: the grid healthy for ``reconnect_delay_s``
    (counted from ``now`` when no healthy time is recorded yet)."""
    since = state.grid_healthy_since_utc or now
    return since + dt.timedelta(seconds=site.islanding.reconnect_delay_s)


def _expire(state: ControllerState, now: dt.datetime) -> ControllerState:
    windows = tuple(w for w in state.outage_windows if w.end_utc > now)
    request = state.reserve_request
    if request is not None and request.until_utc <= now:
        request = None
    if windows == state.outage_windows and request is state.reserve_request:
        return state
    return replace(state, outage_windows=windows, reserve_request=request)


def _warned(site: SiteConfig, state: ControllerState, now: dt.datetime) -> OutageWindow | None:
    """A warned window under way or starting within one plan step."""
    lead = dt.timedelta(minutes=site.control.plan_step_min)
    for w in state.outage_windows:
        if w.start_utc <= now + lead and now < w.end_utc:
            return w
    return None


def _next_mode(site: SiteConfig, state: ControllerState, snapshot: Snapshot,
               signal: GridSignal, now: dt.datetime) -> tuple[Mode, str]:
    mode = state.mode
    warned = _warned(site, state, now)
    if mode is Mode.GRID_CONNECTED:
        if signal is GridSignal.LOST:
            return Mode.ISLANDED, "grid lost: unplanned islanding"
        if warned is not None:
            return Mode.PLANNED_ISLANDING, (f"warned outage from {warned.start_utc.isoformat()}: "
                                            "driving grid ties to zero")
        return mode, ""
    if mode is Mode.PLANNED_ISLANDING:
        if signal is GridSignal.LOST:
            return Mode.ISLANDED, "grid lost during planned islanding: opening now"
        if warned is None:
            return Mode.GRID_CONNECTED, "warned outage withdrawn: staying grid-connected"
        if tie_flow_settled(site, snapshot):
            return Mode.ISLANDED, "grid ties at about 0 kW: planned islanding complete"
        if warned.start_utc <= now:
            return Mode.ISLANDED, "warned outage started: opening with flow still on the ties"
        return mode, ""
    if mode is Mode.ISLANDED:
        in_window = any(w.contains(now) for w in state.outage_windows)
        if signal is GridSignal.HEALTHY and not in_window:
            return Mode.RECONNECTING, (f"grid healthy: reconnecting after "
                                       f"{site.islanding.reconnect_delay_s} s")
        return mode, ""
    # RECONNECTING
    if signal is not GridSignal.HEALTHY:
        return Mode.ISLANDED, f"grid signal {signal.value} while reconnecting: staying islanded"
    if now >= reconnect_at(site, state, now):
        if state.shedding.off_tiers:  # never close the tie onto shed load (see shedding.py)
            return mode, (f"grid healthy for the reconnect delay: tier(s) "
                          f"{list(state.shedding.off_tiers)} still shed, restoring before reconnecting")
        if state.shedding.unconfirmed:
            return mode, (f"grid healthy for the reconnect delay: {len(state.shedding.unconfirmed)} "
                          f"switch channel(s) not yet confirmed connected")
        return Mode.GRID_CONNECTED, "grid healthy for the reconnect delay: reconnected"
    return mode, ""

"""From one step of a plan to device setpoints: real-time correction, clamping, expiry.

Between re-plans the measured load and PV drift from the plan.  The batteries absorb that
deviation so that the planned grid and link exchanges hold:
``battery_kw = planned_battery_kw + (load_meas - load_plan) - (pv_meas - pv_plan)``, within
the battery ratings.  Every value is then clamped to its device's ratings and given an expiry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np

from gridctl.config import SiteConfig
from gridctl.controller.topology import SiteIndex
from gridctl.controller.types import Setpoint, SetpointKind, Setpoints, Snapshot
from optimizer import DispatchPlan

__all__ = ["StepTargets", "correct_targets", "make_setpoints", "step_targets"]

#: Curtailment or shedding below this is solver noise, not a decision [kW].
_EPS_KW = 1e-3


@dataclass(frozen=True, eq=False)
class StepTargets:
    """Node- and link-level targets for the step under way.

    Parameters
    ----------
    battery_kw : ndarray, shape (N,)
        Net battery power per node [kW], positive discharging.
    pv_limit_kw : ndarray, shape (N,)
        PV limit per node [kW]; ``inf`` means no curtailment.
    link_flow_kw : ndarray, shape (L,)
        Sending-end flow per link [kW], positive from ``from_node`` to ``to_node``.
    shed : ndarray of bool, shape (N, K)
        Optimizer tiers to shed per node.
    pv_kw, load_kw : ndarray, shape (N,)
        PV used and load served that the targets assume [kW].
    """

    battery_kw: np.ndarray
    pv_limit_kw: np.ndarray
    link_flow_kw: np.ndarray
    shed: np.ndarray
    pv_kw: np.ndarray
    load_kw: np.ndarray


def step_targets(plan: DispatchPlan, step: int) -> StepTargets:
    """Targets of plan step ``step``."""
    curtailed = plan.pv_curtailed_kw[:, step] > _EPS_KW
    served = plan.load_served_kw[:, :, step]
    shed = plan.load_shed_kw[:, :, step]
    return StepTargets(
        battery_kw=np.array(plan.battery_kw[:, step]),
        pv_limit_kw=np.where(curtailed, plan.pv_used_kw[:, step], np.inf),
        link_flow_kw=np.array(plan.link_flow_kw[:, step]),
        shed=shed > np.maximum(_EPS_KW, 0.01 * (served + shed)),
        pv_kw=np.array(plan.pv_used_kw[:, step]),
        load_kw=served.sum(axis=1),
    )


def correct_targets(idx: SiteIndex, targets: StepTargets, snapshot: Snapshot,
                    stored_bounds_kwh: tuple[np.ndarray, np.ndarray] | None = None,
                    step_h: float | None = None) -> tuple[StepTargets, tuple[str, ...]]:
    """Let each node's battery absorb the deviation of measured load and PV from the targets.

    ``battery_kw += (load_meas - load_kw) - (min(pv_meas, pv_limit) - pv_kw)`` per node with a
    battery and both readings (PV above the curtailment limit never arrives).  With the
    stored-energy bounds ``(soc_min_kwh, soc_max_kwh)`` per node [kWh] and a measured stored
    energy, the battery's power is then limited to what it can hold up for ``step_h`` [h]
    (the plan step: the longest a setpoint may stand): the energy above the minimum or the
    room below the maximum, so that the rules that follow never count on power the battery
    cannot give.  Ratings are applied later, in :func:`make_setpoints`.
    """
    battery = targets.battery_kw.copy()
    notes: list[str] = []
    for n, node_id in enumerate(idx.node_ids):
        if not idx.batteries[n]:
            continue
        reading = snapshot.node(node_id)
        if reading.load_kw is None or reading.pv_kw is None:
            notes.append(f"node {node_id}: load or PV not measured; no real-time correction")
            continue
        # PV beyond the step's curtailment limit never comes: compare what can come.
        pv_kw = min(reading.pv_kw, targets.pv_limit_kw[n])
        deviation = (reading.load_kw - targets.load_kw[n]) - (pv_kw - targets.pv_kw[n])
        battery[n] = battery[n] + deviation
        if stored_bounds_kwh is not None and reading.stored_kwh is not None:
            battery[n] = _within_energy(idx, n, battery[n], reading.stored_kwh,
                                        stored_bounds_kwh, step_h, notes)
    out = StepTargets(battery_kw=battery, pv_limit_kw=targets.pv_limit_kw,
                      link_flow_kw=targets.link_flow_kw, shed=targets.shed,
                      pv_kw=targets.pv_kw, load_kw=targets.load_kw)
    return out, tuple(notes)


def _within_energy(idx: SiteIndex, n: int, battery_kw: float, stored_kwh: float,
                   bounds: tuple[np.ndarray, np.ndarray], step_h: float | None,
                   notes: list[str]) -> float:
    """``battery_kw`` [kW] limited to the energy the battery can give or take over ``step_h``."""
    lo, hi = bounds[0][n], bounds[1][n]
    ratings = [d.rating for d in idx.batteries[n]]
    eta_c = ratings[0].charge_efficiency_pct / 100.0
    eta_d = ratings[0].discharge_efficiency_pct / 100.0
    hours = step_h if step_h else 1e-9  # without a step: only "none at the bound"
    most_out = max(stored_kwh - lo, 0.0) * eta_d / hours
    most_in = max(hi - stored_kwh, 0.0) / (eta_c * hours)
    limited = min(max(battery_kw, -most_in), most_out)
    if limited != battery_kw:
        side = "minimum" if battery_kw > 0 else "maximum"
        notes.append(f"node {idx.node_ids[n]}: near its {side} stored energy; battery "
                     f"{battery_kw:.2f} -> {limited:.2f} kW")
    return limited


def make_setpoints(site: SiteConfig, idx: SiteIndex, targets: StepTargets, snapshot: Snapshot,
                   now: dt.datetime, grid_tie_open: bool) -> tuple[Setpoints, tuple[str, ...]]:
    """Device setpoints for ``targets``, each clamped to its ratings and expiring.

    Batteries share their node's power in proportion to their rating in that direction
    (unhealthy ones get 0 kW); PV inverters share the node's limit in proportion to their AC
    rating; each link gets a setpoint on both router legs: ``-flow`` on the sending leg and
    ``+efficiency * flow`` on the receiving one (positive into the router).
    """
    expires = now + dt.timedelta(seconds=site.control.setpoint_expiry_s)
    items: list[Setpoint] = []
    notes: list[str] = []
    for n, node_id in enumerate(idx.node_ids):
        items += _battery_setpoints(idx, n, float(targets.battery_kw[n]), snapshot, expires)
        items += _pv_setpoints(idx, n, float(targets.pv_limit_kw[n]), expires)
    items += _leg_setpoints(idx, targets.link_flow_kw, snapshot, expires)
    shed: dict[str, tuple[int, ...]] = {}
    for n, node_id in enumerate(idx.node_ids):
        tiers = tuple(idx.tier_numbers[k] for k in range(1, targets.shed.shape[1])
                      if targets.shed[n, k])
        if tiers:
            shed[node_id] = tiers
        if targets.shed[n, 0]:
            notes.append(f"node {node_id}: the plan sheds critical load; critical circuits "
                         "cannot be switched, so it stays connected")
    return Setpoints(at_utc=now, items=tuple(items), shed_tiers=shed,
                     grid_tie_open=grid_tie_open), tuple(notes)


def within_ratings(idx: SiteIndex, targets: StepTargets, snapshot: Snapshot) -> StepTargets:
    """``targets`` with each node's battery power inside what its healthy batteries can give
    or take [kW]. The rules count on the battery power of the targets (a send backed by
    discharge); power beyond the ratings would be clamped away at the device and the grid
    would make up the difference, so it is clamped here, before the rules look."""
    battery = targets.battery_kw.copy()
    for n, devices in enumerate(idx.batteries):
        healthy = [d for d in devices if snapshot.device_ok(d.id)]
        battery[n] = np.clip(battery[n], -sum(d.rating.max_charge_kw for d in healthy),
                             sum(d.rating.max_discharge_kw for d in healthy))
    return replace(targets, battery_kw=battery)


def _battery_setpoints(idx: SiteIndex, n: int, node_kw: float, snapshot: Snapshot,
                       expires: dt.datetime) -> list[Setpoint]:
    devices = idx.batteries[n]
    healthy = {d.id for d in devices if snapshot.device_ok(d.id)}
    total = sum(_weight(d, node_kw) for d in devices if d.id in healthy)
    out = []
    for d in devices:
        value = node_kw * _weight(d, node_kw) / total if d.id in healthy and total > 0 else 0.0
        value = float(np.clip(value, -d.rating.max_charge_kw, d.rating.max_discharge_kw))
        out.append(Setpoint(d.id, idx.node_ids[n], SetpointKind.BATTERY_KW, value, expires))
    return out


def _weight(device, node_kw: float) -> float:
    """Rating of a battery in the direction of ``node_kw`` [kW]: its share weight."""
    return device.rating.max_discharge_kw if node_kw >= 0 else device.rating.max_charge_kw


def _pv_setpoints(idx: SiteIndex, n: int, limit_kw: float, expires: dt.datetime) -> list[Setpoint]:
    devices = idx.pv_inverters[n]
    total = sum(d.rating.ac_kw for d in devices)
    out = []
    for d in devices:
        value = d.rating.ac_kw if not np.isfinite(limit_kw) else limit_kw * d.rating.ac_kw / total
        value = float(np.clip(value, 0.0, d.rating.ac_kw))
        out.append(Setpoint(d.id, idx.node_ids[n], SetpointKind.PV_LIMIT_KW, value, expires))
    return out


def _leg_setpoints(idx: SiteIndex, flow_kw: np.ndarray, snapshot: Snapshot,
                   expires: dt.datetime) -> list[Setpoint]:
    out = []
    for link, flow in zip(idx.links, flow_kw):
        from_router, to_router = idx.routers[link.from_node], idx.routers[link.to_node]
        limit = min(link.capacity_kw, from_router.rating.rated_kw, to_router.rating.rated_kw)
        if not (snapshot.device_ok(link.from_router) and snapshot.device_ok(link.to_router)):
            limit = 0.0  # one end cannot take part: hold the link idle
        flow = float(np.clip(flow, -limit, limit))
        if flow >= 0:
            from_kw, to_kw = -flow, link.efficiency * flow
        else:
            from_kw, to_kw = -link.efficiency * flow, flow
        out.append(Setpoint(link.from_router, idx.node_ids[link.from_node], SetpointKind.LEG_KW,
                            from_kw, expires, leg_id=link.from_leg))
        out.append(Setpoint(link.to_router, idx.node_ids[link.to_node], SetpointKind.LEG_KW,
                            to_kw, expires, leg_id=link.to_leg))
    return out

"""The ``status`` answer: mode, last cycle, members, links, plan step, settlement, transitions.

Power values are rounded to watts and follow the supply-positive convention: ``grid_kw > 0``
imports, ``battery_kw > 0`` discharges, ``p2p_in_kw > 0`` arrives over the router links, so
each member balances as ``pv_kw + grid_kw + battery_kw + p2p_in_kw = load_kw`` (less losses).
A link's ``flow_kw`` is positive from ``from_node`` to ``to_node``.
"""

from __future__ import annotations

import dataclasses
import enum
from datetime import timedelta
from typing import Any

from gridctl.controller.topology import site_index

#: Settlement period length (JST half hours) [s].
PERIOD_S = 1800
#: Transitions shown in status (the journal and the outbox keep them all).
RECENT_TRANSITIONS = 5


class Health(str, enum.Enum):
    """How well the block is controlled (``health`` in status, first word of systemd STATUS)."""

    #: No cycle has run yet.
    STARTING = "starting"
    #: Every control stage ran and every device answered.
    HEALTHY = "healthy"
    #: Control runs, but some devices (or a recording/planning stage, or storage writes) fault.
    DEGRADED = "degraded"
    #: No device answers, or a control stage failed: nothing in the block is being controlled.
    UNCONTROLLED = "uncontrolled"


def health_of(report, devices_ok: int, devices: int, storage_failing: bool = False) -> Health:
    """The :class:`Health` of a cycle ``report`` (None: no cycle yet) with ``devices_ok`` of
    ``devices`` reachable; ``storage_failing``: ledger or outbox writes fail (a full disk)."""
    if report is None:
        return Health.STARTING
    if not report.healthy or (devices > 0 and devices_ok == 0):
        return Health.UNCONTROLLED
    if devices_ok < devices or report.stage_faults or storage_failing:
        return Health.DEGRADED
    return Health.HEALTHY


def daemon_health(daemon) -> tuple[Health, int, int]:
    """``(health, devices_ok, devices)`` of a running daemon."""
    faults = [h.fault for h in daemon.fleet.handles.values()]
    ok = sum(1 for f in faults if f is None)
    failing = daemon.storage.error is not None
    return health_of(daemon.cycle.last, ok, len(faults), failing), ok, len(faults)


def _iso(value) -> str | None:
    return None if value is None else value.isoformat()


def _kw(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _link_ends(site) -> list[tuple[str, str]]:
    """``(from_node, to_node)`` ids of each link, in ``site.links`` order."""
    index = site_index(site)
    return [(index.node_ids[li.from_node], index.node_ids[li.to_node]) for li in index.links]


def link_rows(site, snapshot) -> list[dict[str, Any]]:
    """Each router link with its measured flow [kW] (positive from ``from_node``)."""
    flows = snapshot.link_flow_kw if snapshot is not None else {}
    rows = []
    for link, (a, b) in zip(site.links, _link_ends(site), strict=True):
        flow = flows.get(link.id)
        rows.append({"id": link.id, "from_node": a, "to_node": b, "flow_kw": _kw(flow),
                     "capacity_kw": link.capacity_kw,
                     "direction": None if flow is None or abs(flow) < 0.0005 else
                     (f"{a}->{b}" if flow > 0 else f"{b}->{a}")})
    return rows


def _p2p_in_kw(site, snapshot) -> dict[str, float | None]:
    """Net power arriving at each node over its links [kW], after the link efficiency.

    None for a node with an unmeasured link.
    """
    net: dict[str, float | None] = {n.id: 0.0 for n in site.nodes}
    for link, ends in zip(site.links, _link_ends(site), strict=True):
        flow = snapshot.link_flow_kw.get(link.id) if snapshot is not None else None
        if flow is None:
            net.update({node: None for node in ends})
            continue
        eff, fwd, bwd = link.efficiency_pct / 100.0, max(flow, 0.0), max(-flow, 0.0)
        for node, inflow in zip(ends, (eff * bwd - fwd, eff * fwd - bwd), strict=True):
            if net[node] is not None:
                net[node] += inflow
    return net


def _plan_targets(state, decision) -> dict[str, dict[str, float]]:
    """The current plan step's battery, grid and PV targets per node [kW]."""
    plan = state.plan
    step = decision.plan_step if decision is not None else None
    if plan is None or step is None or not 0 <= step < plan.n_steps:
        return {}
    out = {}
    for i, node_id in enumerate(plan.node_ids):
        out[node_id] = {
            "battery_kw": _kw(plan.battery_discharge_kw[i, step] - plan.battery_charge_kw[i, step]),
            "grid_kw": _kw(plan.grid_import_kw[i, step] - plan.grid_export_kw[i, step]),
            "pv_kw": _kw(plan.pv_used_kw[i, step]),
        }
    return out


def member_rows(daemon) -> dict[str, dict[str, Any]]:
    """Per member: measured powers [kW], SoC [%], shed tiers, device health, plan targets."""
    site, last = daemon.parts.site, daemon.cycle.last
    snapshot = last.snapshot if last else None
    decision = last.decision if last else None
    shed = dict(decision.setpoints.shed_tiers) if decision else {}
    targets = _plan_targets(daemon.cycle.state, decision)
    p2p = _p2p_in_kw(site, snapshot)
    rows = {}
    for node in site.nodes:
        reading = snapshot.nodes.get(node.id) if snapshot is not None else None
        faults = {d.id: daemon.fleet.handles[d.id].fault for d in node.devices}
        soc = reading.soc_pct if reading is not None else None
        absent = {"pv_kw": not node.pv_inverters, "battery_kw": not node.batteries}
        get = (lambda name, r=reading, a=absent: 0.0 if a.get(name) else  # noqa: E731
               _kw(getattr(r, name)) if r is not None else None)
        rows[node.id] = {
            "pv_kw": get("pv_kw"), "load_kw": get("load_kw"), "battery_kw": get("battery_kw"),
            "soc_pct": None if soc is None else round(soc, 1), "grid_kw": get("grid_kw"),
            "p2p_in_kw": _kw(p2p.get(node.id)), "shed_tiers": list(shed.get(node.id, ())),
            "devices_ok": sum(1 for f in faults.values() if f is None), "devices": len(faults),
            "faults": {i: f for i, f in faults.items() if f is not None},
            "target": targets.get(node.id),
        }
    return rows


def block_totals(members: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """Sums over members [kW]; None when any member's value is unknown."""
    out = {}
    for key in ("pv_kw", "load_kw", "battery_kw", "grid_kw", "p2p_in_kw"):
        values = [m[key] for m in members.values()]
        out[key] = None if any(v is None for v in values) else _kw(sum(values))
    return out


def settlement_view(daemon) -> dict[str, Any]:
    """The open period, when it is settled (after the grace time) and the last settled one."""
    recorder = daemon.cycle.recorder
    st, grace_s = recorder.state, daemon.parts.site.market.grace_period_s
    open_start = st.open_start
    view: dict[str, Any] = {
        "open_start_utc": _iso(open_start),
        "next_settlement_utc": _iso(open_start + timedelta(seconds=PERIOD_S + grace_s))
        if open_start else None,
        "last_settled_start_utc": _iso(st.last_settled),
        "last": None,
    }
    last = getattr(daemon.parts.periods, "last", None)
    if last is not None:
        view["last"] = {
            "start_utc": _iso(last.start_utc), "mechanism": last.mechanism,
            "price_jpy_per_kwh": str(last.price_jpy_per_kwh),
            "sold_kwh": str(last.sold_kwh), "bought_kwh": str(last.bought_kwh),
            "grid_import_kwh": str(sum(m.grid_import_kwh for m in last.members)),
            "grid_export_kwh": str(sum(m.grid_export_kwh for m in last.members)),
            "flags": list(last.flags)}
    return view


def shipper_view(shipper) -> dict[str, Any] | None:
    """The outbox shipper's :class:`~gridctl.sinks.ShipperStatus` (None: no shipper, or no
    round yet): ``backlog_rows``, ``oldest_age_s`` [s], ``shipped_rows`` (since start),
    ``consecutive_failures``, ``last_error``, ``retry_in_s`` [s] (0 when healthy),
    ``last_status`` (HTTP), ``failing_since_utc`` and ``rejected``."""
    status = shipper.status() if shipper is not None else None
    if status is None:
        return None
    view = dataclasses.asdict(status)
    view["failing_since_utc"] = _iso(status.failing_since_utc)
    return view


def clock_view(seen) -> dict[str, Any] | None:
    """The wall clock against the monotonic estimate: ``wall_ok``, ``jump_s`` (wall minus
    estimate [s], positive ahead), ``off_for_s`` [s] and the ``trusted_utc`` time that periods
    are settled by (None before the first cycle)."""
    if seen is None:
        return None
    return {"wall_ok": seen.wall_ok, "jump_s": round(seen.offset_s, 1),
            "off_for_s": round(seen.off_for_s, 1), "wall_utc": _iso(seen.wall_utc),
            "trusted_utc": _iso(seen.now_utc)}


def status_of(daemon) -> dict[str, Any]:
    """A JSON-ready description of a running :class:`gridctl.daemon.lifecycle.service.Daemon`."""
    cycle = daemon.cycle
    state, last = cycle.state, cycle.last
    decision = last.decision if last else None
    plan = state.plan
    reserve = state.reserve_request
    sink = daemon.parts.telemetry_sink
    members = member_rows(daemon)
    health, devices_ok, devices = daemon_health(daemon)
    return {
        "site": daemon.parts.site.site.id,
        "mode": state.mode.value,
        "mode_since_utc": _iso(state.mode_since_utc),
        "cycles": cycle.count,
        "last_cycle_utc": _iso(last.at_utc) if last else None,
        "last_cycle_ms": round(last.duration_s * 1000, 2) if last else None,
        "health": health.value,
        "healthy": health is Health.HEALTHY,
        "devices_ok": devices_ok,
        "devices_total": devices,
        "stage_faults": dict(last.stage_faults) if last else {},
        "devices": {i: {"ok": h.fault is None, "fault": h.fault}
                    for i, h in daemon.fleet.handles.items()},
        "members": members,
        "totals": block_totals(members),
        "links": link_rows(daemon.parts.site, last.snapshot if last else None),
        "plan": None if plan is None else {
            "status": getattr(plan.status, "value", str(plan.status)),
            "made_at_utc": _iso(state.plan_made_at_utc),
            "start_utc": _iso(state.plan_start_utc),
            "step": decision.plan_step if decision else None,
            "step_start_utc": _iso(state.plan_start_utc + timedelta(
                seconds=plan.step_s * decision.plan_step))
            if decision and decision.plan_step is not None and state.plan_start_utc else None,
        },
        "fallback": bool(decision.used_fallback) if decision else None,
        "solver_fault": daemon.planner.fault,
        "reserve": None if reserve is None else {
            "hours_h": reserve.hours_h, "until_utc": _iso(reserve.until_utc)},
        "outage_windows": [{"start_utc": _iso(w.start_utc), "end_utc": _iso(w.end_utc),
                            "reason": w.reason} for w in state.outage_windows],
        "shed_tiers": {k: list(v) for k, v in decision.setpoints.shed_tiers.items()}
        if decision else {},
        "settlement": settlement_view(daemon),
        "transitions": [{"at_utc": _iso(t), "from": a, "to": b, "notes": list(n)}
                        for t, a, b, n in list(cycle.transitions)[-RECENT_TRANSITIONS:]],
        "periods_pending": cycle.recorder.backlog(),
        "settlement_fault": cycle.recorder.last_error,
        "storage_error": daemon.storage.error,
        "clock": clock_view(cycle.guard.last),
        "outbox_backlog": sink.backlog() if sink is not None else 0,
        "shipper": shipper_view(daemon.parts.shipper),
        "telemetry_thinned": daemon.telemetry.thinned,
    }

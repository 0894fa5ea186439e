"""The ``status`` answer: mode, last cycle, device health, plan step, reserve, backlogs."""

from __future__ import annotations

from typing import Any


def _iso(value) -> str | None:
    return None if value is None else value.isoformat()


def status_of(daemon) -> dict[str, Any]:
    """A JSON-ready description of a running :class:`gridctl.daemon.service.Daemon`."""
    cycle = daemon.cycle
    state, last = cycle.state, cycle.last
    decision = last.decision if last else None
    plan = state.plan
    reserve = state.reserve_request
    sink = daemon.parts.telemetry_sink
    return {
        "site": daemon.parts.site.site.id,
        "mode": state.mode.value,
        "mode_since_utc": _iso(state.mode_since_utc),
        "cycles": cycle.count,
        "last_cycle_utc": _iso(last.at_utc) if last else None,
        "last_cycle_ms": round(last.duration_s * 1000, 2) if last else None,
        "healthy": bool(last and last.healthy),
        "stage_faults": dict(last.stage_faults) if last else {},
        "devices": {i: {"ok": h.fault is None, "fault": h.fault}
                    for i, h in daemon.fleet.handles.items()},
        "plan": None if plan is None else {
            "status": getattr(plan.status, "value", str(plan.status)),
            "made_at_utc": _iso(state.plan_made_at_utc),
            "start_utc": _iso(state.plan_start_utc),
            "step": decision.plan_step if decision else None,
        },
        "fallback": bool(decision.used_fallback) if decision else None,
        "solver_fault": daemon.planner.fault,
        "reserve": None if reserve is None else {
            "hours_h": reserve.hours_h, "until_utc": _iso(reserve.until_utc)},
        "outage_windows": [{"start_utc": _iso(w.start_utc), "end_utc": _iso(w.end_utc),
                            "reason": w.reason} for w in state.outage_windows],
        "shed_tiers": {k: list(v) for k, v in decision.setpoints.shed_tiers.items()}
        if decision else {},
        "periods_pending": cycle.recorder.backlog(),
        "settlement_fault": cycle.recorder.last_error,
        "outbox_backlog": sink.backlog() if sink is not None else 0,
        "telemetry_thinned": daemon.telemetry.thinned,
    }

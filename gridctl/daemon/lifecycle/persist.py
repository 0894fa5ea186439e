"""Restart safety: the controller state as JSON, kept in a key-value table of the ledger file.

What survives a crash or a restart: the mode and since when, the plan (so a restart does not
start blind), the operator's reserve request and warned outages, month-to-date counters, and
the recorder's period boundaries (so no 30-minute period is lost or settled twice).

The encoding is explicit JSON (no pickle: the database may be read by other tools and must
never execute anything): datetimes as ISO strings, arrays as nested lists.
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from gridctl.controller.types import (
    BillingState,
    ControllerState,
    Mode,
    NodeBilling,
    OutageWindow,
    ReserveRequest,
)
from optimizer import DispatchPlan, PlanStatus, Violation

STATE_KEY = "daemon.controller_state"
RECORDER_KEY = "daemon.recorder"
FORECAST_KEY = "daemon.forecast_history"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def plan_to_json(plan: DispatchPlan) -> dict[str, Any]:
    """A plan as plain JSON values."""
    out: dict[str, Any] = {}
    for f in fields(plan):
        value = getattr(plan, f.name)
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, PlanStatus):
            value = value.value
        elif f.name == "violations":
            value = [{g.name: getattr(v, g.name) for g in fields(v)} for v in value]
        elif f.name in ("objective_parts",):
            value = dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = None if isinstance(value, float) and not np.isfinite(value) else value
    return out


def plan_from_json(data: dict[str, Any]) -> DispatchPlan:
    """Inverse of :func:`plan_to_json`."""
    kwargs = dict(data)
    kwargs["status"] = PlanStatus(kwargs["status"])
    kwargs["node_ids"] = tuple(kwargs["node_ids"])
    kwargs["violations"] = tuple(Violation(**v) for v in kwargs.get("violations", ()))
    kwargs["notes"] = tuple(kwargs.get("notes", ()))
    if kwargs.get("mip_gap") is None:
        kwargs["mip_gap"] = float("nan")
    for f in fields(DispatchPlan):
        if f.name in kwargs and isinstance(kwargs[f.name], list) and f.name.endswith(("_kw", "_kwh")):
            kwargs[f.name] = np.array(kwargs[f.name], dtype=float)
    return DispatchPlan(**kwargs)


def state_to_json(state: ControllerState) -> str:
    """Encode the controller state."""
    reserve = state.reserve_request
    data = {
        "mode": state.mode.value,
        "mode_since_utc": _iso(state.mode_since_utc),
        "plan": plan_to_json(state.plan) if state.plan is not None else None,
        "plan_start_utc": _iso(state.plan_start_utc),
        "plan_made_at_utc": _iso(state.plan_made_at_utc),
        "reserve_request": None if reserve is None else {
            "hours_h": reserve.hours_h, "until_utc": _iso(reserve.until_utc)},
        "outage_windows": [{"start_utc": _iso(w.start_utc), "end_utc": _iso(w.end_utc),
                            "reason": w.reason} for w in state.outage_windows],
        "grid_healthy_since_utc": _iso(state.grid_healthy_since_utc),
        "billing": _billing_to_json(state.billing),
        "grey_kwh": dict(state.grey_kwh),
        "observed_utc": _iso(state.observed_utc),
        "device_faults": sorted(state.device_faults),
    }
    return json.dumps(data, separators=(",", ":"))


def state_from_json(text: str) -> ControllerState:
    """Decode a state written by :func:`state_to_json`."""
    data = json.loads(text)
    reserve = data.get("reserve_request")
    return ControllerState(
        mode=Mode(data["mode"]),
        mode_since_utc=_time(data["mode_since_utc"]),
        plan=plan_from_json(data["plan"]) if data.get("plan") else None,
        plan_start_utc=_time(data.get("plan_start_utc")),
        plan_made_at_utc=_time(data.get("plan_made_at_utc")),
        reserve_request=None if reserve is None else ReserveRequest(
            hours_h=reserve["hours_h"], until_utc=_time(reserve["until_utc"])),
        outage_windows=tuple(OutageWindow(_time(w["start_utc"]), _time(w["end_utc"]), w["reason"])
                             for w in data.get("outage_windows", ())),
        grid_healthy_since_utc=_time(data.get("grid_healthy_since_utc")),
        billing=_billing_from_json(data.get("billing")),
        grey_kwh=data.get("grey_kwh", {}),
        observed_utc=_time(data.get("observed_utc")),
        device_faults=frozenset(data.get("device_faults", ())),
    )


def _billing_to_json(billing: BillingState) -> dict[str, Any]:
    return {"observed_utc": _iso(billing.observed_utc), "nodes": {
        node_id: {"month": b.month, "month_import_kwh": b.month_import_kwh,
                  "period_start_utc": _iso(b.period_start_utc),
                  "period_import_kwh": b.period_import_kwh, "month_peak_kw": b.month_peak_kw,
                  "past_peaks_kw": [list(p) for p in b.past_peaks_kw], "counter_kwh": b.counter_kwh}
        for node_id, b in billing.nodes.items()}}


def _billing_from_json(data: dict[str, Any] | None) -> BillingState:
    """The billing context (an empty one for state saved before it existed)."""
    if not data:
        return BillingState()
    nodes = {node_id: NodeBilling(
        month=b["month"], month_import_kwh=float(b["month_import_kwh"]),
        period_start_utc=_time(b.get("period_start_utc")),
        period_import_kwh=float(b["period_import_kwh"]), month_peak_kw=float(b["month_peak_kw"]),
        past_peaks_kw=tuple((str(m), float(kw)) for m, kw in b.get("past_peaks_kw", ())),
        counter_kwh=b.get("counter_kwh")) for node_id, b in data.get("nodes", {}).items()}
    return BillingState(nodes, _time(data.get("observed_utc")))


class StateStore(Protocol):
    """A durable key-value table (the ledger's ``state`` table in production)."""

    def get(self, key: str) -> str | None:
        """The text stored under ``key``, or None."""

    def put(self, key: str, value: str, at_utc: datetime) -> None:
        """Store ``value`` under ``key`` durably (its own committed transaction)."""


class LedgerStateStore:
    """:class:`StateStore` on :meth:`gridctl.ledger.store.Ledger.state_get` / ``state_put``.

    The ledger commits each put in its own WAL transaction with ``synchronous=FULL``, so a
    ``kill -9`` leaves the old or the new value, never a torn one.
    """

    def __init__(self, ledger) -> None:
        self.ledger = ledger

    def get(self, key: str) -> str | None:
        value = self.ledger.state_get(key)
        return value if isinstance(value, str) else None

    def put(self, key: str, value: str, at_utc: datetime) -> None:
        self.ledger.state_put(key, value)

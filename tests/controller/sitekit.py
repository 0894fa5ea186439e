"""Helpers of the controller tests: the Misono reference site, healthy readings, flat forecasts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from gridctl.controller import (
    DeviceHealth,
    Forecast,
    NodeReading,
    Snapshot,
    horizon_steps,
    plan_start_utc,
)

MISONO = Path(__file__).resolve().parents[2] / "configs" / "misono.yaml"
#: Monday 2026-08-03 12:07 JST (a weekday, daytime time-of-use window).
NOON_UTC = dt.datetime(2026, 8, 3, 3, 7, tzinfo=dt.timezone.utc)


def healthy(site) -> dict[str, DeviceHealth]:
    """Every device of ``site`` healthy."""
    return {d.id: DeviceHealth(True) for _, d in site.all_devices()}


def snapshot(site, at, readings=None, unhealthy=()) -> Snapshot:
    """A snapshot with ``readings`` (node id -> NodeReading) and all devices healthy but some."""
    devices = healthy(site)
    for device_id in unhealthy:
        devices[device_id] = DeviceHealth(False, "test: no answer")
    return Snapshot(at, readings or {}, devices=devices)


def flat_forecast(site, now, pv_kw=0.0, load_kw=1.0) -> Forecast:
    """A forecast with the same PV and load [kW] at every node and step."""
    start = plan_start_utc(site, now)
    ids = tuple(n.id for n in site.nodes)
    shape = (len(ids), horizon_steps(site))
    return Forecast(start, site.control.plan_step_min * 60.0, ids,
                    np.full(shape, pv_kw), np.full(shape, load_kw))


def reading(**kw) -> NodeReading:
    return NodeReading(**kw)


def plan_with(site, n_steps=4, step_s=900.0, **arrays):
    """A DispatchPlan over ``site`` with zero arrays except those given (node x step shapes).

    The plan is a plain value; building one directly lets a test state exactly what the
    optimizer decided, without solving.
    """
    from optimizer import OBJECTIVE_PARTS, DispatchPlan, PlanStatus

    n, k, links = len(site.nodes), 1 + len(site.islanding.shed_order), len(site.links)
    zeros = {
        "pv_used_kw": (n, n_steps), "pv_curtailed_kw": (n, n_steps),
        "battery_charge_kw": (n, n_steps), "battery_discharge_kw": (n, n_steps),
        "stored_kwh": (n, n_steps), "grid_import_kw": (n, n_steps),
        "grid_export_kw": (n, n_steps), "load_served_kw": (n, k, n_steps),
        "load_shed_kw": (n, k, n_steps), "surplus_spilled_kw": (n, n_steps),
        "link_flow_kw": (links, n_steps), "link_loss_kw": (links, n_steps),
    }
    values = {name: np.zeros(shape) for name, shape in zeros.items()}
    status = arrays.pop("status", PlanStatus.OPTIMAL)
    for name, value in arrays.items():
        values[name] = np.broadcast_to(np.asarray(value, dtype=float), zeros[name]).copy()
    return DispatchPlan(status=status, node_ids=tuple(x.id for x in site.nodes), step_s=step_s,
                        objective_jpy=0.0, objective_parts={p: 0.0 for p in OBJECTIVE_PARTS},
                        **values)

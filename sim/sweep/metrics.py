"""The metrics a sweep can collect: block-level key figures of :mod:`sim.kpis` as numbers.

Costs (Decimal strings in ``kpis.json``) become floats [JPY]; ``None`` means not defined for
the case (``savings_vs_standalone_jpy`` without the stand-alone baseline, outage figures
without an outage, ``self_sufficiency_pct`` without load).

Block totals do not depend on the P2P mechanism (members' P2P payments cancel out); how the
gain is shared does: ``min_member_savings_vs_grid_only_jpy`` is the smallest member's
``grid_only_cost_jpy - energy_cost_jpy`` (its settled bills against buying everything from
the grid) [JPY].
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal

__all__ = ["CaseMetrics", "DEFAULT_METRICS", "METRIC_NAMES", "metrics_from_kpis"]


@dataclass(frozen=True)
class CaseMetrics:
    """Block key figures of one policy run (see README "Key figures")."""

    total_cost_jpy: float
    energy_cost_jpy: float
    energy_cost_adjusted_jpy: float
    grid_only_cost_jpy: float
    demand_charge_jpy: float
    lost_load_jpy: float
    savings_vs_standalone_jpy: float | None
    self_sufficiency_pct: float | None
    self_consumption_pct: float | None
    grid_import_kwh: float
    grid_export_kwh: float
    p2p_delivered_kwh: float
    p2p_from_surplus_kwh: float
    peak_import_kw: float
    curtailment_kwh: float
    battery_throughput_kwh: float
    equivalent_cycles: float | None
    unserved_critical_kwh: float
    rule_violations_kwh: float
    shed_while_connected_kwh: float
    resold_kwh: float
    forbidden_export_kwh: float
    export_while_shedding_kwh: float
    settlement_periods_failing_checks: float
    min_member_savings_vs_grid_only_jpy: float
    outage_full_critical_service_h: float | None
    outage_min_stored_kwh: float | None


METRIC_NAMES: tuple[str, ...] = tuple(f.name for f in fields(CaseMetrics))
DEFAULT_METRICS: tuple[str, ...] = ("total_cost_jpy", "self_sufficiency_pct", "peak_import_kw",
                                    "rule_violations_kwh")
_RULES = ("shed_while_connected_kwh", "resold_kwh", "forbidden_export_kwh",
          "export_while_shedding_kwh")
_OUTAGE = {"outage_full_critical_service_h": "full_critical_service_h",
           "outage_min_stored_kwh": "min_stored_kwh"}


def _number(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def metrics_from_kpis(policy_kpis: dict) -> CaseMetrics:
    """The metrics of one policy's ``kpis.json`` entry (``block``, ``members``, ``outages``);
    the first outage's figures when there is one."""
    block = policy_kpis["block"]
    outages = policy_kpis.get("outages") or []
    values: dict[str, float | None] = {}
    for name in METRIC_NAMES:
        if name in _RULES:
            values[name] = _number(block["rule_violations"].get(name, 0.0))
        elif name == "min_member_savings_vs_grid_only_jpy":
            values[name] = float(min(Decimal(m["grid_only_cost_jpy"]) - Decimal(m["energy_cost_jpy"])
                                     for m in policy_kpis["members"].values()))
        elif name in _OUTAGE:
            values[name] = _number(outages[0].get(_OUTAGE[name])) if outages else None
        else:
            values[name] = _number(block.get(name))
    return CaseMetrics(**values)  # type: ignore[arg-type]

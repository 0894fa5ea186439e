"""The block's rules checked on the simulated plant (ground truth), step by step.

Whatever the controller planned, this is what happened at the meters: the same definitions
as :func:`optimizer.rule_breaches` and the same origin attribution as the controller
(:func:`gridctl.controller.origin.grey_step`), applied to the plant's step averages.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from gridctl.config import SiteConfig
from gridctl.controller.origin import grey_step
from optimizer.accounting import resold_kw
from sim.runner.record import SimResult

__all__ = ["PlantRules", "check_rules", "RULE_KINDS"]

#: Power below this is meter noise [kW].
TOL_KW = 1e-3
#: The rule kinds, as key-figure names [kWh].
RULE_KINDS = ("shed_while_connected_kwh", "resold_kwh", "forbidden_export_kwh",
              "export_while_shedding_kwh")


@dataclass(frozen=True, eq=False)
class PlantRules:
    """Per node and step [kW] (T, N): how much of each rule broke, and what was sent.

    ``sent_kw`` is each node's net sending over its links; ``resold_kw`` the part of it that
    was not the node's own surplus.
    """

    shed_while_connected_kw: np.ndarray
    resold_kw: np.ndarray
    forbidden_export_kw: np.ndarray
    export_while_shedding_kw: np.ndarray
    sent_kw: np.ndarray

    def totals_kwh(self, step_h: float, node: int | None = None) -> dict[str, float]:
        """Each rule's total [kWh], for one node or the block."""
        out = {}
        for f in fields(self):
            if f.name == "sent_kw":
                continue
            arr = getattr(self, f.name)
            arr = arr if node is None else arr[:, node]
            out[f.name.removesuffix("_kw") + "_kwh"] = round(float(arr.sum() * step_h), 6)
        return out


def _efficiencies(site: SiteConfig) -> tuple[np.ndarray, np.ndarray]:
    eta_c = np.array([n.batteries[0].rating.charge_efficiency_pct / 100 if n.batteries else 1.0
                      for n in site.nodes])
    eta_d = np.array([n.batteries[0].rating.discharge_efficiency_pct / 100 if n.batteries else 1.0
                      for n in site.nodes])
    return eta_c, eta_d


def check_rules(site: SiteConfig, result: SimResult) -> PlantRules:
    """Check a run's plant series against the rules of the block."""
    s, h = result.series, result.step_h
    grid, battery = s["grid_kw"], s["battery_kw"]
    shed = s["critical_shed_kw"] + s["sheddable_shed_kw"]
    served = s["load_kw"] - shed
    send = -s["link_net_in_kw"]  # received minus sent, flipped: positive sending
    connected = result.connected
    eta_c, eta_d = _efficiencies(site)
    grey = np.zeros(grid.shape[1])
    discharge_grey = np.zeros_like(grid)
    for k in range(grid.shape[0]):
        step = grey_step(grey, s["stored_kwh"][k], battery[k], grid[k], send[k], h, eta_c, eta_d,
                         bool(connected[k]))
        grey, discharge_grey[k] = step.grey_kwh, step.discharge_grey_kw
    exp = np.maximum(-grid, 0.0)
    resold = resold_kw(send.T, s["pv_kw"].T, np.maximum(battery, 0.0).T, discharge_grey.T,
                       served.T, connected).T
    fit = np.array([not n.contract.battery_export_allowed for n in site.nodes])
    surplus = np.maximum(s["pv_kw"] - served, 0.0)
    forbidden = np.where(fit[None, :], np.maximum(exp - surplus, 0.0), 0.0)

    def clean(arr: np.ndarray) -> np.ndarray:
        return np.where(arr > TOL_KW, arr, 0.0)

    return PlantRules(
        shed_while_connected_kw=clean(shed * connected[:, None]),
        resold_kw=clean(resold),
        forbidden_export_kw=clean(forbidden),
        export_while_shedding_kw=clean(np.where(shed > TOL_KW, exp, 0.0)),
        sent_kw=np.maximum(send, 0.0),
    )

"""The block as a pure plant: nodes (PV, battery, load tiers, grid meter) joined by router links.

The plant is the ground truth of a simulation. The controller sees it only through
:meth:`BlockPlant.readings` and sends :class:`PlantCommand` values, which the plant applies as
devices would: battery power ramped (``ramp_kw_per_s``) and clamped to power and state-of-charge
limits, PV output capped by the curtailment limit, link flows clamped to link capacity.

Per node and step (supply-positive, step averages [kW])::

    pv + grid + battery + link_in_net = critical_served + sheddable_served

* grid-connected node: the utility meter is the slack (``grid`` takes the residual);
* islanded node (outage, or no grid connection): the node's own battery forms the cell and
  absorbs the residual within its limits; a remaining surplus curtails PV, then backs off the
  links delivering into the node (the sender absorbs it in turn); a remaining deficit first
  backs off the links sending out of the node, then sheds the sheddable tier, then critical
  load; finally, when the whole block is islanded, the routers feed a cell that had to shed
  from neighbours whose batteries still have headroom (one hop, within link capacity).

Links: ``flow_kw`` > 0 sends from ``from_node``; the receiving end gets ``efficiency * |flow|``,
the rest is ``link_loss_kw``. Battery losses are ``(1 - eta_c) charge + (1/eta_d - 1) discharge``
plus self-discharge. Cumulative counters only grow and are what settlement differences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridctl.config import SiteConfig
from gridctl.controller.topology import site_index
from sim.plant.devices import BatterySpec, BatteryState, battery_power_limits_kw, step_battery

__all__ = ["BlockPlant", "COUNTERS", "LINK_COUNTERS", "PlantCommand", "PlantState", "StepFlows"]

_S_PER_H = 3600.0
#: Per-node cumulative counters [kWh].
COUNTERS = ("grid_import_kwh", "grid_export_kwh", "pv_kwh", "pv_curtailed_kwh",
            "critical_served_kwh", "sheddable_served_kwh", "critical_shed_kwh",
            "sheddable_shed_kwh", "battery_charge_kwh", "battery_discharge_kwh",
            "battery_loss_kwh")
#: Per-link cumulative counters [kWh]: sending-end and receiving-end energy by direction.
LINK_COUNTERS = ("fwd_sent_kwh", "fwd_received_kwh", "bwd_sent_kwh", "bwd_received_kwh")


@dataclass(frozen=True)
class PlantCommand:
    """Setpoints for one step, arrays over nodes (N,) and links (L,).

    Parameters
    ----------
    battery_kw : ndarray (N,)
        Battery AC power setpoint [kW], positive discharging.
    pv_limit_kw : ndarray (N,)
        PV output cap [kW], ``inf`` for none.
    link_flow_kw : ndarray (L,)
        Sending-end flow setpoint [kW], positive from ``from_node`` to ``to_node``.
    shed_fraction : ndarray (N,)
        Share of the sheddable load to switch off [-], in [0, 1].
    """

    battery_kw: np.ndarray
    pv_limit_kw: np.ndarray
    link_flow_kw: np.ndarray
    shed_fraction: np.ndarray


@dataclass(frozen=True, eq=False)
class PlantState:
    """Stored energy [kWh], battery power at the end of the last step [kW] and counters [kWh]."""

    stored_kwh: np.ndarray
    battery_end_kw: np.ndarray
    counters: dict[str, np.ndarray]
    link_counters: dict[str, np.ndarray]


@dataclass(frozen=True, eq=False)
class StepFlows:
    """Step-average flows [kW] (N,) or (L,) and the battery losses of the step [kWh]."""

    pv_kw: np.ndarray
    pv_curtailed_kw: np.ndarray
    battery_kw: np.ndarray
    grid_kw: np.ndarray
    critical_served_kw: np.ndarray
    sheddable_served_kw: np.ndarray
    critical_shed_kw: np.ndarray
    sheddable_shed_kw: np.ndarray
    link_flow_kw: np.ndarray
    link_loss_kw: np.ndarray
    battery_loss_kwh: np.ndarray


@dataclass(frozen=True)
class _Node:
    battery: BatterySpec | None
    ramp_kw_per_s: float | None
    pv_rated_kw: float
    critical_share: float
    has_grid: bool


def _ramped_average_kw(previous_kw: float, target_kw: float, rate_kw_per_s: float | None,
                       dt_s: float) -> tuple[float, float]:
    """(average, end) power [kW] moving from ``previous`` towards ``target`` at ``rate``."""
    if rate_kw_per_s is None or previous_kw == target_kw:
        return target_kw, target_kw
    delta = target_kw - previous_kw
    ramp_s = abs(delta) / rate_kw_per_s
    if ramp_s >= dt_s:
        end = previous_kw + np.sign(delta) * rate_kw_per_s * dt_s
        return (previous_kw + end) / 2.0, end
    return target_kw - delta * ramp_s / (2.0 * dt_s), target_kw


class BlockPlant:
    """Physical model of a site's block; pure: :meth:`step` returns a new state.

    Parameters
    ----------
    site : SiteConfig
    p2p : bool
        False gives every link zero capacity (members trade only with the grid).
    """

    def __init__(self, site: SiteConfig, p2p: bool = True) -> None:
        self.node_ids = tuple(n.id for n in site.nodes)
        self.link_ids = tuple(link.id for link in site.links)
        nodes = []
        for node in site.nodes:
            bats = node.batteries
            spec = None
            ramp = None
            if bats:
                r = bats[0].rating  # one battery per node: the config check enforces it [?]
                spec = BatterySpec(
                    capacity_kwh=r.capacity_kwh, max_charge_kw=r.max_charge_kw,
                    max_discharge_kw=r.max_discharge_kw,
                    charge_efficiency=r.charge_efficiency_pct / 100.0,
                    discharge_efficiency=r.discharge_efficiency_pct / 100.0,
                    self_discharge_pct_per_day=r.self_discharge_pct_per_day,
                    soc_min_pct=r.soc_min_pct, soc_max_pct=r.soc_max_pct)
                ramp = r.ramp_kw_per_s
            nodes.append(_Node(spec, ramp, sum(p.rating.ac_kw for p in node.pv_inverters),
                               node.load.critical_share_pct / 100.0, node.grid is not None))
        self._nodes = tuple(nodes)
        links = site_index(site).links  # same node and link order as the site's
        self.link_from = np.array([lk.from_node for lk in links], int)
        self.link_to = np.array([lk.to_node for lk in links], int)
        # Without P2P (the stand-alone baseline) the routers carry nothing between members.
        self.link_capacity_kw = np.array([lk.capacity_kw if p2p else 0.0 for lk in site.links], float)
        self.link_efficiency = np.array([lk.efficiency_pct / 100.0 for lk in site.links], float)
        self.critical_share = np.array([n.critical_share for n in nodes])
        self.pv_rated_kw = np.array([n.pv_rated_kw for n in nodes])

    @property
    def battery_specs(self) -> tuple[BatterySpec | None, ...]:
        """Battery ratings per node (None where a node has no battery)."""
        return tuple(n.battery for n in self._nodes)

    def initial_state(self, soc_pct: float = 50.0) -> PlantState:
        """All batteries at ``soc_pct`` [%] (kept inside their SoC window), counters at zero."""
        stored = np.array([0.0 if n.battery is None else n.battery.capacity_kwh * min(
            max(soc_pct, n.battery.soc_min_pct), n.battery.soc_max_pct) / 100.0 for n in self._nodes])
        n_nodes, n_links = len(self.node_ids), len(self.link_ids)
        return PlantState(stored, np.zeros(n_nodes), {c: np.zeros(n_nodes) for c in COUNTERS},
                          {c: np.zeros(n_links) for c in LINK_COUNTERS})

    def idle_command(self) -> PlantCommand:
        """Batteries idle, no curtailment, no link flow, nothing shed."""
        n_nodes, n_links = len(self.node_ids), len(self.link_ids)
        return PlantCommand(np.zeros(n_nodes), np.full(n_nodes, np.inf), np.zeros(n_links),
                            np.zeros(n_nodes))

    def link_net_in_kw(self, flow_kw: np.ndarray) -> np.ndarray:
        """Net power arriving at each node from its links [kW]."""
        net = np.zeros(len(self.node_ids))
        fwd, bwd = np.clip(flow_kw, 0, None), np.clip(-flow_kw, 0, None)
        np.add.at(net, self.link_from, self.link_efficiency * bwd - fwd)
        np.add.at(net, self.link_to, self.link_efficiency * fwd - bwd)
        return net

    def _battery_range(self, i: int, state: PlantState, dt_s: float) -> tuple[float, float]:
        spec = self._nodes[i].battery
        if spec is None:
            return 0.0, 0.0
        return battery_power_limits_kw(spec, BatteryState(float(state.stored_kwh[i])), dt_s)

    def _balance(self, state, cmd, pv_avail, load, grid_ok, flow_kw, dt_s):
        """One pass of node balances for given link flows (arrays per node, step averages [kW]).

        ``surplus``/``deficit`` are what an islanded cell could not absorb and must be taken off
        the link flows into/out of it before the next pass.
        """
        net_in = self.link_net_in_kw(flow_kw)
        sending = self._sending_kw(flow_kw)
        rows = []
        for i, node in enumerate(self._nodes):
            crit = load[i] * node.critical_share
            able = load[i] - crit
            row = {"pv": max(0.0, min(pv_avail[i], node.pv_rated_kw, cmd.pv_limit_kw[i])),
                   "crit_served": crit, "able_shed": able * min(max(cmd.shed_fraction[i], 0.0), 1.0),
                   "grid": 0.0, "crit_shed": 0.0, "surplus": 0.0, "deficit": 0.0, "spare": 0.0}
            low, high = self._battery_range(i, state, dt_s)
            bat, row["bat_end"] = _ramped_average_kw(
                float(state.battery_end_kw[i]), float(cmd.battery_kw[i]), node.ramp_kw_per_s, dt_s)
            row["bat"] = min(max(bat, low), high)
            residual = crit + able - row["able_shed"] - row["pv"] - row["bat"] - net_in[i]
            if grid_ok and node.has_grid:
                row["grid"] = residual
            else:
                _island_cell(row, residual, low, high, able, sending[i])
                row["spare"] = max(high - row["bat"], 0.0)
            row["able_served"] = able - row["able_shed"]
            rows.append(row)
        return {k: np.array([r[k] for r in rows]) for k in rows[0]}

    def _sending_kw(self, flow_kw: np.ndarray) -> np.ndarray:
        """Power each node sends into its links [kW] (sending-end, >= 0)."""
        out = np.zeros(len(self.node_ids))
        np.add.at(out, self.link_from, np.clip(flow_kw, 0, None))
        np.add.at(out, self.link_to, np.clip(-flow_kw, 0, None))
        return out

    def _back_off(self, flow: np.ndarray, node: int, amount_kw: float, incoming: bool) -> None:
        """Reduce the flows into (``incoming``) or out of ``node`` by ``amount_kw`` at that node."""
        left = amount_kw
        for link in range(len(flow)):
            into = (self.link_to[link] == node and flow[link] > 0) or (
                self.link_from[link] == node and flow[link] < 0)
            outof = (self.link_from[link] == node and flow[link] > 0) or (
                self.link_to[link] == node and flow[link] < 0)
            if left <= 0 or not (into if incoming else outof):
                continue
            eta = self.link_efficiency[link] if incoming else 1.0
            cut = min(abs(flow[link]), left / eta)
            flow[link] -= np.sign(flow[link]) * cut
            left -= cut * eta

    def _share(self, flow: np.ndarray, out: dict, cmd: PlantCommand, load: np.ndarray) -> bool:
        """Let routers feed islanded cells that had to shed involuntarily from neighbours whose
        battery still has discharge headroom (one hop, within link capacity). True if changed."""
        able = load * (1.0 - self.critical_share)
        short = out["crit_shed"] + out["able_shed"] - able * np.clip(cmd.shed_fraction, 0.0, 1.0)
        changed = False
        for i in np.flatnonzero(short > 1e-9):
            need = float(short[i])
            for link in range(len(flow)):
                if self.link_to[link] == i:
                    j, sign = int(self.link_from[link]), 1.0
                elif self.link_from[link] == i:
                    j, sign = int(self.link_to[link]), -1.0
                else:
                    continue
                eta = self.link_efficiency[link]
                room = self.link_capacity_kw[link] - sign * flow[link]
                extra = min(need / eta, room, float(out["spare"][j]))
                if extra > 1e-9 and need > 1e-9:
                    flow[link] += sign * extra
                    out["spare"][j] -= extra
                    need -= extra * eta
                    changed = True
        return changed

    def _settle_flows(self, state, cmd, pv_avail, load, grid_ok, dt_s):
        flow = np.clip(cmd.link_flow_kw, -self.link_capacity_kw, self.link_capacity_kw).astype(float)
        shares = len(self.node_ids)
        for _ in range(8 * (len(self.node_ids) + len(self.link_ids)) + 1):
            out = self._balance(state, cmd, pv_avail, load, grid_ok, flow, dt_s)
            if np.any(out["surplus"] > 1e-12) or np.any(out["deficit"] > 1e-12):
                for i in np.flatnonzero(out["surplus"] > 1e-12):
                    self._back_off(flow, int(i), float(out["surplus"][i]), incoming=True)
                for i in np.flatnonzero(out["deficit"] > 1e-12):
                    self._back_off(flow, int(i), float(out["deficit"][i]), incoming=False)
                continue
            if shares > 0 and not grid_ok and self._share(flow, out, cmd, load):
                shares -= 1
                continue
            return out, flow
        raise RuntimeError("islanded link flows did not settle")  # flows converge: unreachable

    def step(self, state: PlantState, cmd: PlantCommand, pv_available_kw: np.ndarray,
             load_kw: np.ndarray, grid_available: bool, dt_s: float) -> tuple[PlantState, StepFlows]:
        """Advance the block by ``dt_s`` [s]; returns the new state and the step's flows."""
        out, flow = self._settle_flows(state, cmd, pv_available_kw, load_kw, grid_available, dt_s)
        hours = dt_s / _S_PER_H
        stored = state.stored_kwh.copy()
        bat_loss = np.zeros(len(self.node_ids))
        for i, node in enumerate(self._nodes):
            if node.battery is None:
                continue
            before = BatteryState(float(stored[i]))
            after = step_battery(node.battery, before, float(out["bat"][i]), dt_s)
            bat_loss[i] = before.stored_kwh - after.stored_kwh - after.power_kw * hours
            out["bat"][i] = after.power_kw
            stored[i] = after.stored_kwh
        loss = (1.0 - self.link_efficiency) * np.abs(flow)
        flows = StepFlows(
            pv_kw=out["pv"], pv_curtailed_kw=np.clip(pv_available_kw, 0, None) - out["pv"],
            battery_kw=out["bat"], grid_kw=out["grid"], critical_served_kw=out["crit_served"],
            sheddable_served_kw=out["able_served"], critical_shed_kw=out["crit_shed"],
            sheddable_shed_kw=out["able_shed"], link_flow_kw=flow, link_loss_kw=loss,
            battery_loss_kwh=bat_loss)
        return PlantState(stored, out["bat_end"], _count(state.counters, flows, hours),
                          _count_links(state.link_counters, flow, self.link_efficiency, hours)), flows


def _island_cell(row: dict, residual: float, low: float, high: float, able: float,
                 sending_kw: float) -> None:
    """Close an islanded cell's balance in ``row``: battery, then curtail / back off, then shed."""
    new_bat = min(max(row["bat"] + residual, low), high)  # the battery forms the cell
    residual -= new_bat - row["bat"]
    row["bat"] = row["bat_end"] = new_bat
    if residual < 0:
        cut = min(row["pv"], -residual)
        row["pv"] -= cut
        row["surplus"] = -(residual + cut)
        return
    # A router will not send out power its own cell lacks: take it off the links first.
    row["deficit"] = min(sending_kw, residual)
    residual -= row["deficit"]
    more = min(able - row["able_shed"], residual)
    row["able_shed"] += more
    row["crit_shed"] = min(row["crit_served"], residual - more)
    row["crit_served"] -= row["crit_shed"]


def _count(counters: dict[str, np.ndarray], f: StepFlows, hours: float) -> dict[str, np.ndarray]:
    add = {
        "grid_import_kwh": np.clip(f.grid_kw, 0, None), "grid_export_kwh": np.clip(-f.grid_kw, 0, None),
        "pv_kwh": f.pv_kw, "pv_curtailed_kwh": f.pv_curtailed_kw,
        "critical_served_kwh": f.critical_served_kw, "sheddable_served_kwh": f.sheddable_served_kw,
        "critical_shed_kwh": f.critical_shed_kw, "sheddable_shed_kwh": f.sheddable_shed_kw,
        "battery_charge_kwh": np.clip(-f.battery_kw, 0, None),
        "battery_discharge_kwh": np.clip(f.battery_kw, 0, None),
    }
    out = {k: counters[k] + v * hours for k, v in add.items()}
    out["battery_loss_kwh"] = counters["battery_loss_kwh"] + f.battery_loss_kwh
    return out


def _count_links(counters, flow, efficiency, hours):
    fwd, bwd = np.clip(flow, 0, None) * hours, np.clip(-flow, 0, None) * hours
    return {"fwd_sent_kwh": counters["fwd_sent_kwh"] + fwd,
            "fwd_received_kwh": counters["fwd_received_kwh"] + efficiency * fwd,
            "bwd_sent_kwh": counters["bwd_sent_kwh"] + bwd,
            "bwd_received_kwh": counters["bwd_received_kwh"] + efficiency * bwd}

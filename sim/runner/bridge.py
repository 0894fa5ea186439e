"""What crosses between the plant and the controller: readings out, setpoints in, meter counters.

The controller sees the plant only through a :class:`~gridctl.controller.Snapshot` built here
from the last step's measurements, and acts on it only through
:class:`~gridctl.controller.Setpoints`, which become a :class:`~sim.plant.block.PlantCommand`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal

import numpy as np

from gridctl.config import SiteConfig
from gridctl.controller.switches import ChannelId
from gridctl.controller.topology import site_index
from gridctl.controller.types import DeviceHealth, NodeReading, SetpointKind, Setpoints, Snapshot
from gridctl.settlement.model import GRID_CHANNEL, PV_CHANNEL, counter_kwh, link_channel
from sim.plant.block import BlockPlant, PlantCommand, PlantState
from sim.runner.switches import SimSwitches, SwitchFault, shedding_actuated

__all__ = ["Bridge"]



class Bridge:
    """Translations for one site (precomputed lookups), and the site's simulated switches."""

    def __init__(self, site: SiteConfig, plant: BlockPlant,
                 switch_faults: Mapping[ChannelId, SwitchFault] | None = None) -> None:
        self.site = site
        self.plant = plant
        #: Shedding through switches (None: a site without switches sheds ideally).
        self.switches = SimSwitches(site, switch_faults) if shedding_actuated(site) else None
        self.node_ids = plant.node_ids
        self.devices = {d.id: DeviceHealth(True) for _, d in site.all_devices()}
        self._battery_ids = [[d.id for d in n.batteries] for n in site.nodes]
        self._pv_ids = [[d.id for d in n.pv_inverters] for n in site.nodes]
        self._shed_tier = [n.load.shed_tier for n in site.nodes]
        self._link_legs = [(lk.from_router, lk.from_leg, lk.to_router, lk.to_leg)
                           for lk in site_index(site).links]

    def snapshot(self, now: dt.datetime, state: PlantState, pv_kw: np.ndarray, load_kw: np.ndarray,
                 grid_kw: np.ndarray, battery_kw: np.ndarray, link_flow_kw: np.ndarray,
                 grid_available: bool) -> Snapshot:
        """Readings at ``now``: last step's powers [kW], current stored energy and grid state."""
        nodes = {}
        for i, node_id in enumerate(self.node_ids):
            nodes[node_id] = NodeReading(
                pv_kw=float(pv_kw[i]), load_kw=float(load_kw[i]), grid_kw=float(grid_kw[i]),
                battery_kw=float(battery_kw[i]),
                stored_kwh=float(state.stored_kwh[i]) if self._battery_ids[i] else None,
                grid_available=grid_available,
                grid_import_kwh=float(state.counters["grid_import_kwh"][i]))
        links = {lk: float(f) for lk, f in zip(self.plant.link_ids, link_flow_kw)}
        switches = self.switches.readings(now) if self.switches is not None else {}
        return Snapshot(at_utc=now, nodes=nodes, link_flow_kw=links, devices=self.devices,
                        switches=switches)

    def command(self, setpoints: Setpoints) -> PlantCommand:
        """Node- and link-level plant command from device setpoints.

        With switches, the switch commands go to the simulated contactors and a node sheds
        the share of its sheddable load behind open contactors (a node without switches
        cannot shed by itself); without, a shed tier is shed in full.
        """
        if self.switches is not None:
            self.switches.apply(setpoints.switch_commands, setpoints.at_utc)
        n_nodes = len(self.node_ids)
        battery = np.zeros(n_nodes)
        pv_limit = np.full(n_nodes, np.inf)
        shed = np.zeros(n_nodes)
        for i in range(n_nodes):
            battery[i] = sum(setpoints.value_kw(d, SetpointKind.BATTERY_KW) or 0.0
                             for d in self._battery_ids[i])
            limits = [setpoints.value_kw(d, SetpointKind.PV_LIMIT_KW) for d in self._pv_ids[i]]
            if limits and all(v is not None for v in limits):
                pv_limit[i] = sum(limits)
            if self.switches is not None:
                shed[i] = self.switches.open_share(self.node_ids[i])
            elif self._shed_tier[i] in setpoints.shed_tiers.get(self.node_ids[i], ()):
                shed[i] = 1.0
        flows = np.zeros(len(self._link_legs))
        for j, (from_router, from_leg, to_router, to_leg) in enumerate(self._link_legs):
            from_kw = setpoints.value_kw(from_router, SetpointKind.LEG_KW, from_leg)
            to_kw = setpoints.value_kw(to_router, SetpointKind.LEG_KW, to_leg)
            if from_kw is not None and from_kw <= 0:
                flows[j] = -from_kw          # sending from the from-router
            elif to_kw is not None and to_kw < 0:
                flows[j] = to_kw             # sending from the to-router
        return PlantCommand(battery, pv_limit, flows, shed)

    def counters(self, state: PlantState) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
        """Cumulative meter counters ``{(member, channel): (import_kwh, export_kwh)}``.

        Grid meters count import/export; each router link leg counts inflow (import) into and
        outflow (export) out of its member's router; a node with PV inverters has a ``pv``
        channel: the AC energy its PV delivered (after curtailment), what the inverters'
        lifetime counters read in the daemon, and 0 out.
        """
        c, lc = state.counters, state.link_counters
        out = {}
        for i, node_id in enumerate(self.node_ids):
            out[(node_id, GRID_CHANNEL)] = (_kwh(c["grid_import_kwh"][i]), _kwh(c["grid_export_kwh"][i]))
            if self._pv_ids[i]:
                out[(node_id, PV_CHANNEL)] = (_kwh(c["pv_kwh"][i]), _kwh(0.0))
        for j, link_id in enumerate(self.plant.link_ids):
            a, b = self.node_ids[self.plant.link_from[j]], self.node_ids[self.plant.link_to[j]]
            out[(a, link_channel(link_id))] = (_kwh(lc["bwd_received_kwh"][j]), _kwh(lc["fwd_sent_kwh"][j]))
            out[(b, link_channel(link_id))] = (_kwh(lc["fwd_received_kwh"][j]), _kwh(lc["bwd_sent_kwh"][j]))
        return out


def _kwh(value: float) -> Decimal:
    return counter_kwh(max(float(value), 0.0))

"""The block's rules kept in real time, on the targets of the step under way.

The plan keeps the rules for its forecasts; between re-plans the measured load and PV
differ, and the batteries absorb the difference (:func:`gridctl.controller.setpoints.
correct_targets`).  Where a battery cannot, the grid meter would, and that could break a rule.
So, from the corrected targets and this cycle's readings, with ``grid = load - pv - battery -
link_in`` the import each node would then draw:

1. no shedding unless the grid tie is open (islanded or reconnecting);
2. FIT meters: a node whose contract forbids battery export does not discharge into an
   export, and takes no link inflow it would only pass to the grid;
3. demand guard: a node with a demand charge does not charge from the grid above
   ``max(this month's peak, own deficit)``;
4. no resale: a node sends net over its links at most its own surplus, its PV plus the
   green (PV- or P2P-origin) part of its battery discharge less its load (a node that would
   import while sending sends more than that); it sends less, and what its neighbours then
   lack they import themselves.  Relays are followed until nothing changes.

Pure: targets and readings in, targets and notes out.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from gridctl.controller.setpoints import StepTargets
from gridctl.controller.topology import SiteIndex

__all__ = ["NodeContext", "enforce_rules", "link_net_in_kw"]

#: Power differences below this are meter noise [kW].
_TOL_KW = 1e-3


class NodeContext:
    """Per-node facts the rules need (arrays over nodes).

    Parameters
    ----------
    load_kw, pv_kw : ndarray
        Measured load and PV [kW] (NaN when not measured: the node is left alone).
    battery_export_allowed : ndarray of bool
    demand_guard_kw : ndarray
        This month's peak so far of nodes with a demand charge [kW]; ``inf`` elsewhere.
    grid_available : bool
        The block is grid-connected (the rules bind; while islanded only rule 1 does).
    tie_open : bool
        The grid tie is open: shedding allowed.
    green_kw : ndarray, optional
        Most battery power each node can give from green stored energy over a plan step
        [kW] (``inf``: not known, not limited).
    """

    __slots__ = ("load_kw", "pv_kw", "battery_export_allowed", "demand_guard_kw",
                 "grid_available", "tie_open", "green_kw")

    def __init__(self, load_kw: np.ndarray, pv_kw: np.ndarray, battery_export_allowed: np.ndarray,
                 demand_guard_kw: np.ndarray, grid_available: bool, tie_open: bool,
                 green_kw: np.ndarray | None = None) -> None:
        self.load_kw, self.pv_kw = load_kw, pv_kw
        self.battery_export_allowed = battery_export_allowed
        self.demand_guard_kw = demand_guard_kw
        self.grid_available, self.tie_open = grid_available, tie_open
        self.green_kw = np.full(len(load_kw), np.inf) if green_kw is None else green_kw


def link_net_in_kw(idx: SiteIndex, flow_kw: np.ndarray) -> np.ndarray:
    """Net power arriving at each node over its links [kW] (received minus sent)."""
    net = np.zeros(idx.n_nodes)
    for link, flow in zip(idx.links, flow_kw):
        sent, got = abs(flow), link.efficiency * abs(flow)
        src, dst = (link.from_node, link.to_node) if flow >= 0 else (link.to_node, link.from_node)
        net[src] -= sent
        net[dst] += got
    return net


def _pv_kw(targets: StepTargets, ctx: NodeContext) -> np.ndarray:
    """PV that will come: the measured output, at most the step's curtailment limit [kW]."""
    return np.minimum(ctx.pv_kw, targets.pv_limit_kw)


def _grid_kw(targets: StepTargets, ctx: NodeContext, idx: SiteIndex, flow: np.ndarray) -> np.ndarray:
    return ctx.load_kw - _pv_kw(targets, ctx) - targets.battery_kw - link_net_in_kw(idx, flow)


def _trim_inflow(idx: SiteIndex, flow: np.ndarray, node: int, amount_kw: float) -> None:
    """Take ``amount_kw`` (as received) off the links delivering into ``node`` (in place)."""
    for j, link in enumerate(idx.links):
        into = (link.to_node == node and flow[j] > 0) or (link.from_node == node and flow[j] < 0)
        if amount_kw <= _TOL_KW or not into:
            continue
        cut = min(abs(flow[j]), amount_kw / link.efficiency)
        flow[j] -= np.sign(flow[j]) * cut
        amount_kw -= cut * link.efficiency


def _trim_outflow(idx: SiteIndex, flow: np.ndarray, node: int, amount_kw: float) -> None:
    """Take ``amount_kw`` (as sent) off the links leaving ``node`` (in place)."""
    for j, link in enumerate(idx.links):
        out = (link.from_node == node and flow[j] > 0) or (link.to_node == node and flow[j] < 0)
        if amount_kw <= _TOL_KW or not out:
            continue
        cut = min(abs(flow[j]), amount_kw)
        flow[j] -= np.sign(flow[j]) * cut
        amount_kw -= cut


def enforce_rules(idx: SiteIndex, targets: StepTargets, ctx: NodeContext,
                  ) -> tuple[StepTargets, tuple[str, ...]]:
    """``targets`` changed as little as needed to keep the rules (see the module text)."""
    notes: list[str] = []
    shed = targets.shed if ctx.tie_open else np.zeros_like(targets.shed)
    if targets.shed.any() and not ctx.tie_open:
        notes.append("no load shed while the grid tie is closed")
    battery, flow = targets.battery_kw.copy(), targets.link_flow_kw.copy()
    out = replace(targets, shed=shed, battery_kw=battery, link_flow_kw=flow)
    if not ctx.grid_available:
        return out, tuple(notes)
    known = ~(np.isnan(ctx.load_kw) | np.isnan(ctx.pv_kw))
    _fit(idx, out, ctx, known, notes)
    _demand(idx, out, ctx, known, notes)
    _no_resale(idx, out, ctx, known, notes)
    return out, tuple(notes)


def _fit(idx: SiteIndex, t: StepTargets, ctx: NodeContext, known: np.ndarray, notes: list[str]) -> None:
    """Cut discharge into an export, then inflow that would be exported, at FIT meters; a
    cut inflow leaves its sender with more to place, so this runs until nothing changes."""
    fit = known & ~ctx.battery_export_allowed
    for _ in range(idx.n_nodes + len(idx.links) + 1):
        grid = _grid_kw(t, ctx, idx, t.link_flow_kw)
        changed = False
        for n in np.flatnonzero(fit & (grid < -_TOL_KW)):
            changed |= _fit_node(idx, t, ctx, int(n), -float(grid[n]), notes)
        if not changed:
            return


def _fit_node(idx: SiteIndex, t: StepTargets, ctx: NodeContext, n: int, export: float,
              notes: list[str]) -> bool:
    changed = False
    if t.battery_kw[n] > _TOL_KW:
        cut = min(export, t.battery_kw[n])
        t.battery_kw[n] -= cut
        export -= cut
        changed = True
        notes.append(f"node {idx.node_ids[n]}: battery discharge cut {cut:.2f} kW "
                     "(no battery export at a FIT meter)")
    surplus = max(_pv_kw(t, ctx)[n] - ctx.load_kw[n] - max(-t.battery_kw[n], 0.0), 0.0)
    beyond = export - surplus
    if beyond > _TOL_KW and link_net_in_kw(idx, t.link_flow_kw)[n] > _TOL_KW:
        _trim_inflow(idx, t.link_flow_kw, n, beyond)
        changed = True
        notes.append(f"node {idx.node_ids[n]}: link inflow cut {beyond:.2f} kW "
                     "(it would go to the grid at a FIT meter)")
    return changed


def _demand(idx: SiteIndex, t: StepTargets, ctx: NodeContext, known: np.ndarray,
            notes: list[str]) -> None:
    grid = _grid_kw(t, ctx, idx, t.link_flow_kw)
    guard = np.maximum(ctx.demand_guard_kw, np.maximum(ctx.load_kw - _pv_kw(t, ctx), 0.0))
    for n in np.flatnonzero(known & (grid > guard + _TOL_KW) & (t.battery_kw < -_TOL_KW)):
        cut = min(grid[n] - guard[n], -t.battery_kw[n])
        t.battery_kw[n] += cut
        notes.append(f"node {idx.node_ids[n]}: grid charging cut {cut:.2f} kW "
                     "(it would raise the demand peak)")


def _no_resale(idx: SiteIndex, t: StepTargets, ctx: NodeContext, known: np.ndarray,
               notes: list[str]) -> None:
    for _ in range(idx.n_nodes + len(idx.links) + 1):
        send = -link_net_in_kw(idx, t.link_flow_kw)
        green = np.minimum(np.maximum(t.battery_kw, 0.0), ctx.green_kw)
        own = np.maximum(_pv_kw(t, ctx) + green - ctx.load_kw, 0.0)
        # what goes out beyond the own surplus came from the grid, now or out of store
        excess = np.minimum(np.maximum(send - own, 0.0), np.maximum(send, 0.0))
        over = known & (excess > _TOL_KW)
        if not over.any():
            return
        for n in np.flatnonzero(over):
            _trim_outflow(idx, t.link_flow_kw, int(n), float(excess[n]))
            # The send is now the own surplus, PV and green discharge less load, so those stay
            # as they are; grey discharge that backed the cut part has nowhere to go but the
            # grid meter, so it stops. (Cutting green discharge too would shrink the surplus by
            # as much as the send and never settle.)
            grey_kw = max(t.battery_kw[n] - float(green[n]), 0.0)
            t.battery_kw[n] -= min(float(excess[n]), grey_kw)
            notes.append(f"node {idx.node_ids[n]}: link send cut {excess[n]:.2f} kW (beyond "
                         "its own surplus: no resale of grid power)")

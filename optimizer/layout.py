"""Where things live in the HiGHS matrix: index blocks, node masks, binary families, shape key.

Pure helpers of :mod:`optimizer.highs_model`: nothing here touches HiGHS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.problem import BILLING_GROUPS, DispatchProblem

__all__ = ["Allocator", "Binaries", "Block", "Masks", "binaries_needed", "node_link_send_kw",
           "shape_key"]


@dataclass(frozen=True)
class Block:
    """A block of consecutive column or row indices: ``start`` and the block's shape."""

    start: int
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    def ids(self) -> np.ndarray:
        return self.start + np.arange(self.size).reshape(self.shape)


class Allocator:
    """Hands out consecutive index blocks by name."""

    def __init__(self) -> None:
        self.count = 0
        self.blocks: dict[str, Block] = {}

    def add(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        block = Block(self.count, shape)
        self.blocks[name] = block
        self.count += block.size
        return block.ids()


@dataclass(frozen=True, eq=False)
class Binaries:
    """Where exclusivity binaries are integer, per family (boolean masks).

    Attributes
    ----------
    battery : ndarray of bool, shape (N, T)
        Charge/discharge exclusivity.
    grid : ndarray of bool, shape (N, T)
        Import/export exclusivity.
    link : ndarray of bool, shape (L, T)
        Direction exclusivity of each link.
    mode : ndarray of bool, shape (N, T)
        Grey/green mode of a node (import or grid-origin discharge, versus net sending or
        green charging); only nodes of ``Masks.mode`` use it.
    """

    battery: np.ndarray
    grid: np.ndarray
    link: np.ndarray
    mode: np.ndarray

    @property
    def any(self) -> bool:
        """True when some binary is integer."""
        return bool(self.battery.any() or self.grid.any() or self.link.any() or self.mode.any())


def binaries_needed(problem: DispatchProblem, all_binary: bool = False,
                    mode: np.ndarray | None = None) -> Binaries:
    """Where exclusivity binaries change the answer.

    Simultaneous charge and discharge (or opposite link flows) only burns energy; that pays
    only where energy has negative value somewhere in the horizon: a negative import price in a
    connected step, or PV that cannot be curtailed.  Simultaneous import and export pays only
    where the export price is at least the import price at that node and step.  The grey/green
    mode binaries are integer where ``mode`` says so (the dispatcher marks them lazily where
    the relaxation mixes the two), or everywhere with ``all_binary``.
    """
    n, t, n_links = problem.n_nodes, problem.n_steps, problem.n_links
    if all_binary:
        ones = np.ones((n, t), bool)
        return Binaries(ones, ones.copy(), np.ones((n_links, t), bool), ones.copy())
    grid = problem.grid
    connected = grid.available[None, :] & (grid.import_limit_kw[:, None] > 0)
    disposal = bool(np.any((grid.import_price_jpy_per_kwh < 0) & connected)) or bool(
        np.any(~problem.pv_curtailable & (problem.pv_available_kw.max(axis=1) > 0)))
    both = connected & (grid.export_limit_kw[:, None] > 0)
    arbitrage = both & (grid.export_price_jpy_per_kwh >= grid.import_price_jpy_per_kwh)
    marks = np.zeros((n, t), bool) if mode is None else np.asarray(mode, bool)
    return Binaries(np.full((n, t), disposal), arbitrage, np.full((n_links, t), disposal), marks)


def node_link_send_kw(problem: DispatchProblem) -> np.ndarray:
    """Largest sending-end power each node can push into its links [kW], shape (N,)."""
    links = problem.links
    out = np.zeros(problem.n_nodes)
    np.add.at(out, links.from_node, links.capacity_kw)
    np.add.at(out, links.to_node, links.capacity_kw)
    return out


@dataclass(frozen=True, eq=False)
class Masks:
    """Node subsets that get a family of columns or rows (index arrays into the node axis).

    Attributes
    ----------
    battery : nodes with a battery.
    spill : nodes whose PV cannot be curtailed.
    fit : nodes whose contract forbids battery export to the grid.
    demand : nodes with a demand charge.
    tiered : nodes with a tiered import tariff (a finite block somewhere).
    mode : nodes that can both import and send over a link: they get a grey/green mode.
    grey : battery nodes with a grid connection (the only ones that can hold grid energy).
    mode_battery : positions in ``battery`` of the mode nodes that have one.
    mode_of_battery : for each of those, its position in ``mode``.
    """

    battery: np.ndarray
    spill: np.ndarray
    fit: np.ndarray
    demand: np.ndarray
    tiered: np.ndarray
    mode: np.ndarray
    grey: np.ndarray
    mode_battery: np.ndarray
    mode_of_battery: np.ndarray

    @staticmethod
    def of(problem: DispatchProblem) -> Masks:
        bat, grid = problem.battery, problem.grid
        has_battery = (bat.soc_max_kwh > 0) | (bat.charge_max_kw > 0) | (bat.discharge_max_kw > 0)
        battery = np.flatnonzero(has_battery)
        has_grid = grid.import_limit_kw > 0
        mode = np.flatnonzero(has_grid & (node_link_send_kw(problem) > 0))
        in_mode = np.isin(battery, mode)
        return Masks(
            battery=battery,
            spill=np.flatnonzero(~problem.pv_curtailable),
            fit=np.flatnonzero(~bat.grid_export_allowed),
            demand=np.flatnonzero(grid.demand_charge_jpy_per_kw > 0),
            tiered=np.flatnonzero((np.isfinite(grid.tiers.width_kwh)
                                   & (grid.tiers.width_kwh > 0)).any(axis=(1, 2))),
            mode=mode,
            grey=np.flatnonzero(np.isin(battery, np.flatnonzero(has_grid))),
            mode_battery=np.flatnonzero(in_mode),
            mode_of_battery=np.searchsorted(mode, battery[in_mode]),
        )

    def key(self) -> tuple:
        return tuple(getattr(self, name).tobytes() for name in
                     ("battery", "spill", "fit", "demand", "tiered", "mode", "grey"))


def shape_key(problem: DispatchProblem, binaries: Binaries) -> tuple:
    """Everything that fixes the matrix: sizes, masks, matrix coefficients, binary families."""
    bat, links, grid = problem.battery, problem.links, problem.grid
    parts = [problem.n_nodes, problem.n_steps, problem.n_tiers, problem.n_links, problem.step_s,
             grid.n_periods, grid.tiers.n_blocks, BILLING_GROUPS, grid.period_of_step.tobytes(),
             grid.tiers.group_of_step.tobytes()]
    parts += list(Masks.of(problem).key())
    # Mode big-M values (import limit, link send capacity, battery power) are in the matrix.
    arrays = [bat.charge_efficiency, bat.discharge_efficiency, links.from_node, links.to_node,
              links.efficiency, grid.import_limit_kw, node_link_send_kw(problem),
              bat.charge_max_kw, bat.discharge_max_kw, bat.self_discharge_per_h]
    families = tuple(name for name in ("battery", "grid", "link")
                     if getattr(binaries, name).any())
    if "grid" in families:
        arrays += [grid.export_limit_kw]
    if "link" in families:
        arrays += [links.capacity_kw]
    parts += [a.tobytes() for a in arrays]
    return tuple(parts) + (families,)

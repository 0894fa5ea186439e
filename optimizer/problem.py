"""Input data of one dispatch solve: arrays over nodes x steps, no config objects, no clock.

Index conventions used everywhere in :mod:`optimizer`:

* ``n`` indexes nodes (``N = len(node_ids)``): homes, shops, the mall.
* ``t`` indexes plan steps (``T``), each ``step_s`` seconds long; step 0 starts now.
* ``k`` indexes load tiers (``K``): tier 0 is critical and is shed last; a higher index is
  shed earlier.  The value of lost load must therefore strictly decrease with ``k``.
* ``l`` indexes router links (``L``).
* ``p`` indexes demand periods (the JST 30-minute periods the horizon touches, ``P``).
* ``g`` indexes billing-month groups of the horizon (``G = 2``: this month, the next) and
  ``b`` the blocks of a tiered tariff inside one group (``NB``).

Sign convention: split variables are non-negative and name their direction; a link's net
flow is positive from ``from_node`` to ``to_node``.  Floats are used throughout (money is
``decimal.Decimal`` only outside the optimizer).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

__all__ = [
    "BILLING_GROUPS",
    "BatteryData",
    "DispatchProblem",
    "GridData",
    "ImportTiers",
    "LinkData",
    "Penalties",
    "SolverOptions",
    "reserve_profile_kwh",
]

#: Billing-month groups a horizon may touch (this month and the next) [-].
BILLING_GROUPS = 2
#: Length of a demand period (the Japanese 30-minute settlement period) [h].
DEMAND_PERIOD_H = 0.5


def _as_array(owner: str, name: str, value, shape: tuple[int, ...], dtype=float) -> np.ndarray:
    """Copy ``value`` to a read-only array of ``shape``; raise a one-line ValueError otherwise."""
    arr = np.array(value, dtype=dtype, copy=True)
    if arr.shape != shape:
        raise ValueError(f"{owner}.{name}: shape {arr.shape} != expected {shape}")
    if dtype is float and not np.all(np.isfinite(arr)):
        raise ValueError(f"{owner}.{name}: contains NaN or infinite values")
    arr.setflags(write=False)
    return arr


def _check(cond: bool, owner: str, name: str, message: str) -> None:
    if not cond:
        raise ValueError(f"{owner}.{name}: {message}")


@dataclass(frozen=True)
class SolverOptions:
    """How hard to try.

    Parameters
    ----------
    time_limit_s : float
        Wall-time budget of the solver call [s]; on expiry the best incumbent is used, or the
        fallback plan if there is none.
    mip_rel_gap : float
        Relative MIP gap at which HiGHS stops [-] (0.005 = 0.5 %).  Unused by pure LPs.
    threads : int
        Solver threads [-].
    """

    time_limit_s: float = 10.0
    mip_rel_gap: float = 0.005
    threads: int = 1

    def __post_init__(self) -> None:
        _check(self.time_limit_s > 0, "SolverOptions", "time_limit_s", "must be > 0")
        _check(0 <= self.mip_rel_gap < 1, "SolverOptions", "mip_rel_gap", "must be in [0, 1)")
        _check(self.threads >= 1, "SolverOptions", "threads", "must be >= 1")


@dataclass(frozen=True)
class Penalties:
    """Prices of the slack that keeps the model feasible whatever reality does.

    Parameters
    ----------
    soc_below_min_jpy_per_kwh : float
        Per kWh of the deepest dip of each battery's stored energy below ``soc_min_kwh``
        over the horizon, paid once [JPY/kWh].
    reserve_shortfall_jpy_per_kwh_h : float
        Per kWh of block stored energy below ``reserve_kwh`` and per hour it stays short, in
        grid-connected steps [JPY/(kWh h)].  Priced per hour (not per step) so that a
        shortfall is restored at the cheapest moment, not bought back at once at any price.
    surplus_spill_jpy_per_kwh : float
        Per kWh of non-curtailable PV that nothing can absorb [JPY/kWh].
    unserved_connected_jpy_per_kwh : float
        Per kWh of load left unserved in a grid-connected step [JPY/kWh].  Shedding is an
        islanding tool: while the grid is available, load that no supply can meet is a
        violation to report, never a plan, so it costs far more than any tier's value.
    tie_break_jpy_per_kwh : float
        Tiny cost on battery charge, grid import and link flow [JPY/kWh] so that an LP never
        picks pointless simultaneous opposite flows when they happen to cost nothing.
    """

    soc_below_min_jpy_per_kwh: float = 500.0
    reserve_shortfall_jpy_per_kwh_h: float = 10.0
    surplus_spill_jpy_per_kwh: float = 1000.0
    unserved_connected_jpy_per_kwh: float = 100_000.0
    tie_break_jpy_per_kwh: float = 1e-3

    def __post_init__(self) -> None:
        for f in fields(self):
            _check(getattr(self, f.name) >= 0, "Penalties", f.name, "must be >= 0")


@dataclass(frozen=True)
class ImportTiers:
    """Increasing block prices of tiered tariffs, as a convex piecewise-linear import cost.

    The energy a node imports over the steps of billing group ``g`` fills its blocks in
    order: block ``b`` holds up to ``width_kwh[n, g, b]`` and each kWh in it costs
    ``increment_jpy_per_kwh[n, g, b]`` on top of ``GridData.import_price_jpy_per_kwh``.
    Widths start from the month-to-date import, so the first block is what is left of the
    tier reached so far.  Increments never decrease along ``b`` (the cost is convex), so a
    linear program fills the cheap blocks first and the model stays an LP.

    Parameters
    ----------
    group_of_step : ndarray of int, shape (T,)
        Billing group of each step: 0 for this month, 1 for the next (non-decreasing).
    width_kwh : ndarray, shape (N, G, NB)
        Block sizes [kWh], >= 0; ``inf`` for an open top block.
    increment_jpy_per_kwh : ndarray, shape (N, G, NB)
        Price on top of the step's import price per kWh in the block [JPY/kWh], >= 0,
        non-decreasing along the last axis.
    """

    group_of_step: np.ndarray
    width_kwh: np.ndarray
    increment_jpy_per_kwh: np.ndarray

    @staticmethod
    def none(n_nodes: int, n_steps: int) -> ImportTiers:
        """No tiers: one open block at no extra price per node and group."""
        shape = (n_nodes, BILLING_GROUPS, 1)
        return ImportTiers(np.zeros(n_steps, dtype=int), np.full(shape, np.inf), np.zeros(shape))

    @property
    def n_blocks(self) -> int:
        """Blocks per node and group NB [-]."""
        return int(self.width_kwh.shape[-1])


@dataclass(frozen=True)
class GridData:
    """Utility connection of each node, shape ``(N,)`` or ``(N, T)``.

    Parameters
    ----------
    import_price_jpy_per_kwh : ndarray, shape (N, T)
        Price paid per kWh imported from the utility at the month-to-date import reached at
        horizon start [JPY/kWh]; may be negative.  Tier steps above it are in ``tiers``.
    export_price_jpy_per_kwh : ndarray, shape (N, T)
        Price earned per kWh exported to the utility [JPY/kWh]; may be negative.
    import_limit_kw : ndarray, shape (N,)
        Connection limit for import [kW], >= 0 (0 = no grid connection at that node).
    export_limit_kw : ndarray, shape (N,)
        Connection limit for export [kW], >= 0.
    available : ndarray of bool, shape (T,)
        True where the utility grid is connected during the step; False in islanded steps
        (an ongoing outage or a warned, planned outage window), where all grid flows are zero.
    demand_charge_jpy_per_kw : ndarray, shape (N,)
        Cost of raising the node's demand peak by one kW above ``peak_import_so_far_kw``
        [JPY/kW] (the monthly rate times the months that peak can be billed for); 0
        disables the demand charge and its guard.
    peak_import_so_far_kw : ndarray, shape (N,)
        The highest 30-minute average import of the billing period so far [kW].  Only
        raising it costs.
    period_of_step : ndarray of int, shape (T,), optional
        Demand period of each step (0 = the period under way), non-decreasing by 0 or 1.
        Default: consecutive 30-minute periods from step 0 (each step its own period when
        steps are 30 minutes or longer).
    period_import_so_far_kwh : ndarray, shape (N,), optional
        Energy already imported in period 0 before step 0 [kWh], >= 0 (default 0).
    tiers : ImportTiers, optional
        Block prices of tiered tariffs (default: none).
    guard_lifted : ndarray of bool, shape (T,), optional
        Steps in which the demand guard is lifted (default: none): ahead of a warned outage
        the batteries may fill from the grid beyond the peak so far; the demand charge still
        prices any raise of the peak, so resilience is bought only where it is worth it.

    Notes
    -----
    Demand guard: at a node with a demand charge, import in a step never exceeds the larger
    of ``peak_import_so_far_kw`` and the node's highest own net deficit ``sum_k load -
    pv_available`` in the horizon up to that step.  So the controller may fill a battery from
    the grid only below a peak the member's own load has set, and never raises a peak that
    doing nothing smart would not have had.
    """

    import_price_jpy_per_kwh: np.ndarray
    export_price_jpy_per_kwh: np.ndarray
    import_limit_kw: np.ndarray
    export_limit_kw: np.ndarray
    available: np.ndarray
    demand_charge_jpy_per_kw: np.ndarray
    peak_import_so_far_kw: np.ndarray
    period_of_step: np.ndarray | None = None
    period_import_so_far_kwh: np.ndarray | None = None
    tiers: ImportTiers | None = None
    guard_lifted: np.ndarray | None = None

    @property
    def n_periods(self) -> int:
        """Demand periods the horizon touches P [-]."""
        return int(self.period_of_step[-1]) + 1

    def marginal_import_price_jpy_per_kwh(self) -> np.ndarray:
        """Price of the next imported kWh in each step [JPY/kWh], shape (N, T): the step's
        price plus the increment of the first block of its billing group not yet full."""
        tiers = self.tiers
        open_block = np.argmax(tiers.width_kwh > 0, axis=-1)  # (N, G)
        first = np.take_along_axis(tiers.increment_jpy_per_kwh, open_block[..., None],
                                   axis=-1)[..., 0]
        return self.import_price_jpy_per_kwh + first[:, tiers.group_of_step]


@dataclass(frozen=True)
class BatteryData:
    """Battery of each node, all shape ``(N,)``; a node without battery has zero limits.

    Parameters
    ----------
    stored_kwh : ndarray
        Measured stored energy now [kWh].  Outside ``[0, soc_max_kwh]`` it is clamped by the
        model with a note; below ``soc_min_kwh`` it is allowed and the shortfall is penalised.
    soc_min_kwh, soc_max_kwh : ndarray
        Stored-energy bounds [kWh], ``0 <= soc_min_kwh <= soc_max_kwh``.
    charge_max_kw, discharge_max_kw : ndarray
        AC power limits [kW], >= 0.
    charge_efficiency, discharge_efficiency : ndarray
        One-way efficiencies in ``(0, 1]`` [-]: stored energy grows by ``eta_c * charge`` and
        falls by ``discharge / eta_d``.
    wear_cost_jpy_per_kwh : ndarray
        Throughput wear cost per kWh discharged (AC side) [JPY/kWh], >= 0.
    terminal_value_jpy_per_kwh : ndarray
        Value credited per kWh stored at the end of the horizon [JPY/kWh], >= 0, so that the
        plan does not empty the batteries at the horizon end.
    grid_export_allowed : ndarray of bool
        False where the contract forbids battery energy flowing to the grid (FIT meter):
        then export is at most the node's own PV surplus ``max(pv_available - load, 0)``
        and at most its PV used, in every step.
    self_discharge_per_h : ndarray, optional
        Share of the stored energy lost per hour [1/h] (default 0); applied to the energy
        after each step's flows, as batteries lose it.
    grey_stored_kwh : ndarray, optional
        Part of ``stored_kwh`` that came from the utility grid [kWh] (default 0).  Stored
        energy is tagged by origin: grid-origin energy may serve only the node's own load;
        only PV- or P2P-origin energy may leave over a router link.
    """

    stored_kwh: np.ndarray
    soc_min_kwh: np.ndarray
    soc_max_kwh: np.ndarray
    charge_max_kw: np.ndarray
    discharge_max_kw: np.ndarray
    charge_efficiency: np.ndarray
    discharge_efficiency: np.ndarray
    wear_cost_jpy_per_kwh: np.ndarray
    terminal_value_jpy_per_kwh: np.ndarray
    grid_export_allowed: np.ndarray
    grey_stored_kwh: np.ndarray | None = None
    self_discharge_per_h: np.ndarray | None = None


@dataclass(frozen=True)
class LinkData:
    """Router links, all shape ``(L,)``.

    Parameters
    ----------
    from_node, to_node : ndarray of int
        Node indices of the two ends; net flow is positive from ``from_node`` to ``to_node``.
    capacity_kw : ndarray
        Limit on the sending-end power in either direction [kW], >= 0.
    efficiency : ndarray
        Fraction of the sent power that arrives, in ``(0, 1]`` [-].
    """

    from_node: np.ndarray
    to_node: np.ndarray
    capacity_kw: np.ndarray
    efficiency: np.ndarray


@dataclass(frozen=True)
class DispatchProblem:
    """Everything one dispatch solve needs.  Validated and made read-only on construction.

    Parameters
    ----------
    node_ids : tuple of str
        Node names, length N, unique.
    step_s : float
        Length of each plan step [s]; 900 for 15-minute steps.
    pv_available_kw : ndarray, shape (N, T)
        Forecast PV power available [kW], >= 0.
    pv_curtailable : ndarray of bool, shape (N,)
        Whether the node's PV can be curtailed; if not, all available PV must be used or
        spilled at ``Penalties.surplus_spill_jpy_per_kwh``.
    load_kw : ndarray, shape (N, K, T)
        Forecast load by tier [kW], >= 0; tier 0 is critical.
    value_of_lost_load_jpy_per_kwh : ndarray, shape (K,)
        Cost of shedding one kWh of each tier [JPY/kWh], strictly decreasing with the tier
        index so that critical load is shed last.
    grid : GridData
    battery : BatteryData
    links : LinkData
    reserve_kwh : ndarray, shape (T,)
        Block-wide stored energy to keep at the end of each grid-connected step [kWh] (soft,
        see :func:`reserve_profile_kwh`).
    penalties : Penalties
    options : SolverOptions
    """

    node_ids: tuple[str, ...]
    step_s: float
    pv_available_kw: np.ndarray
    pv_curtailable: np.ndarray
    load_kw: np.ndarray
    value_of_lost_load_jpy_per_kwh: np.ndarray
    grid: GridData
    battery: BatteryData
    links: LinkData
    reserve_kwh: np.ndarray
    penalties: Penalties = field(default_factory=Penalties)
    options: SolverOptions = field(default_factory=SolverOptions)

    def __post_init__(self) -> None:
        object.__setattr__(self, "node_ids", tuple(str(n) for n in self.node_ids))
        n_nodes = len(self.node_ids)
        _check(n_nodes >= 1, "DispatchProblem", "node_ids", "needs at least one node")
        _check(len(set(self.node_ids)) == n_nodes, "DispatchProblem", "node_ids", "not unique")
        _check(self.step_s > 0, "DispatchProblem", "step_s", "must be > 0")
        pv = np.asarray(self.pv_available_kw, dtype=float)
        _check(pv.ndim == 2, "DispatchProblem", "pv_available_kw", "must be 2-D (nodes, steps)")
        n_steps = pv.shape[1]
        _check(n_steps >= 1, "DispatchProblem", "pv_available_kw", "needs at least one step")
        load = np.asarray(self.load_kw, dtype=float)
        _check(load.ndim == 3, "DispatchProblem", "load_kw", "must be 3-D (nodes, tiers, steps)")
        n_tiers = load.shape[1]
        _check(n_tiers >= 1, "DispatchProblem", "load_kw", "needs at least one tier")
        self._set("pv_available_kw", pv, (n_nodes, n_steps))
        self._set("pv_curtailable", self.pv_curtailable, (n_nodes,), bool)
        self._set("load_kw", load, (n_nodes, n_tiers, n_steps))
        self._set("value_of_lost_load_jpy_per_kwh", self.value_of_lost_load_jpy_per_kwh, (n_tiers,))
        self._set("reserve_kwh", self.reserve_kwh, (n_steps,))
        for name in ("pv_available_kw", "load_kw", "reserve_kwh"):
            _check(bool(np.all(getattr(self, name) >= 0)), "DispatchProblem", name, "must be >= 0")
        voll = self.value_of_lost_load_jpy_per_kwh
        _check(bool(np.all(voll >= 0)), "DispatchProblem", "value_of_lost_load_jpy_per_kwh",
               "must be >= 0")
        _check(bool(np.all(np.diff(voll) < 0)), "DispatchProblem",
               "value_of_lost_load_jpy_per_kwh", "must strictly decrease with tier (critical first)")
        object.__setattr__(self, "grid", _validated_grid(self.grid, n_nodes, n_steps, self.step_s))
        object.__setattr__(self, "battery", _validated_battery(self.battery, n_nodes))
        object.__setattr__(self, "links", _validated_links(self.links, n_nodes))

    def _set(self, name: str, value, shape: tuple[int, ...], dtype=float) -> None:
        object.__setattr__(self, name, _as_array("DispatchProblem", name, value, shape, dtype))

    @property
    def n_nodes(self) -> int:
        """Number of nodes N [-]."""
        return len(self.node_ids)

    @property
    def n_steps(self) -> int:
        """Number of plan steps T [-]."""
        return int(self.pv_available_kw.shape[1])

    @property
    def n_tiers(self) -> int:
        """Number of load tiers K [-]."""
        return int(self.load_kw.shape[1])

    @property
    def n_links(self) -> int:
        """Number of router links L [-]."""
        return int(self.links.capacity_kw.shape[0])

    @property
    def step_h(self) -> float:
        """Step length [h]."""
        return self.step_s / 3600.0

    @property
    def keep_per_step(self) -> np.ndarray:
        """Share of stored energy kept over one step, (N,) [-]: ``1 - self_discharge * dt``."""
        return 1.0 - self.battery.self_discharge_per_h * self.step_h


def _validated_grid(grid: GridData, n_nodes: int, n_steps: int, step_s: float) -> GridData:
    own = "GridData"
    periods = grid.period_of_step
    if periods is None:
        periods = (np.arange(n_steps) * step_s // max(step_s, 3600.0 * DEMAND_PERIOD_H)).astype(int)
    so_far = grid.period_import_so_far_kwh
    out = GridData(
        import_price_jpy_per_kwh=_as_array(own, "import_price_jpy_per_kwh",
                                           grid.import_price_jpy_per_kwh, (n_nodes, n_steps)),
        export_price_jpy_per_kwh=_as_array(own, "export_price_jpy_per_kwh",
                                           grid.export_price_jpy_per_kwh, (n_nodes, n_steps)),
        import_limit_kw=_as_array(own, "import_limit_kw", grid.import_limit_kw, (n_nodes,)),
        export_limit_kw=_as_array(own, "export_limit_kw", grid.export_limit_kw, (n_nodes,)),
        available=_as_array(own, "available", grid.available, (n_steps,), bool),
        demand_charge_jpy_per_kw=_as_array(own, "demand_charge_jpy_per_kw",
                                           grid.demand_charge_jpy_per_kw, (n_nodes,)),
        peak_import_so_far_kw=_as_array(own, "peak_import_so_far_kw",
                                        grid.peak_import_so_far_kw, (n_nodes,)),
        period_of_step=_as_array(own, "period_of_step", periods, (n_steps,), int),
        period_import_so_far_kwh=_as_array(own, "period_import_so_far_kwh",
                                           np.zeros(n_nodes) if so_far is None else so_far,
                                           (n_nodes,)),
        tiers=_validated_tiers(grid.tiers or ImportTiers.none(n_nodes, n_steps), n_nodes,
                               n_steps),
        guard_lifted=_as_array(own, "guard_lifted", np.zeros(n_steps, bool)
                               if grid.guard_lifted is None else grid.guard_lifted, (n_steps,), bool),
    )
    for name in ("import_limit_kw", "export_limit_kw", "demand_charge_jpy_per_kw",
                 "peak_import_so_far_kw", "period_import_so_far_kwh"):
        _check(bool(np.all(getattr(out, name) >= 0)), own, name, "must be >= 0")
    steps = np.diff(out.period_of_step)
    _check(out.period_of_step[0] == 0 and bool(np.all((steps == 0) | (steps == 1))), own,
           "period_of_step", "must start at 0 and rise by 0 or 1 per step")
    return out


def _validated_tiers(tiers: ImportTiers, n_nodes: int, n_steps: int) -> ImportTiers:
    own = "ImportTiers"
    width = np.array(tiers.width_kwh, dtype=float, copy=True)
    n_blocks = width.shape[-1] if width.ndim == 3 else 0
    shape = (n_nodes, BILLING_GROUPS, n_blocks)
    _check(n_blocks >= 1 and width.shape == shape, own, "width_kwh",
           f"shape {width.shape} != expected (nodes, {BILLING_GROUPS}, blocks)")
    _check(bool(np.all(width >= 0)) and not np.any(np.isnan(width)), own, "width_kwh",
           "must be >= 0 (inf for an open block)")
    width.setflags(write=False)
    incr = _as_array(own, "increment_jpy_per_kwh", tiers.increment_jpy_per_kwh, shape)
    _check(bool(np.all(incr >= 0)) and bool(np.all(np.diff(incr, axis=-1) >= 0)), own,
           "increment_jpy_per_kwh", "must be >= 0 and non-decreasing along the blocks")
    _check(bool(np.all(np.isinf(width[..., -1]))), own, "width_kwh",
           "the last block of every node and group must be open (inf)")
    group = _as_array(own, "group_of_step", tiers.group_of_step, (n_steps,), int)
    _check(bool(np.all((group >= 0) & (group < BILLING_GROUPS)))
           and bool(np.all(np.diff(group) >= 0)), own, "group_of_step",
           f"must be non-decreasing in [0, {BILLING_GROUPS})")
    return ImportTiers(group, width, incr)


def _validated_battery(bat: BatteryData, n_nodes: int) -> BatteryData:
    own = "BatteryData"
    shape = (n_nodes,)
    values = {}
    for f in fields(BatteryData):
        dtype = bool if f.name == "grid_export_allowed" else float
        value = getattr(bat, f.name)
        if f.name in ("grey_stored_kwh", "self_discharge_per_h") and value is None:
            value = np.zeros(n_nodes)
        values[f.name] = _as_array(own, f.name, value, shape, dtype)
    out = BatteryData(**values)
    for name in ("soc_min_kwh", "charge_max_kw", "discharge_max_kw", "wear_cost_jpy_per_kwh",
                 "terminal_value_jpy_per_kwh", "grey_stored_kwh", "self_discharge_per_h"):
        _check(bool(np.all(values[name] >= 0)), own, name, "must be >= 0")
    _check(bool(np.all(values["self_discharge_per_h"] < 0.5)), own, "self_discharge_per_h",
           "must be < 0.5 (a battery that loses half its energy per hour is a typo)")
    _check(bool(np.all(out.soc_max_kwh >= out.soc_min_kwh)), own, "soc_max_kwh",
           "must be >= soc_min_kwh")
    for name in ("charge_efficiency", "discharge_efficiency"):
        _check(bool(np.all((values[name] > 0) & (values[name] <= 1))), own, name,
               "must be in (0, 1]")
    return out


def _validated_links(links: LinkData, n_nodes: int) -> LinkData:
    own = "LinkData"
    n_links = int(np.asarray(links.capacity_kw).reshape(-1).shape[0])
    out = LinkData(
        from_node=_as_array(own, "from_node", links.from_node, (n_links,), int),
        to_node=_as_array(own, "to_node", links.to_node, (n_links,), int),
        capacity_kw=_as_array(own, "capacity_kw", links.capacity_kw, (n_links,)),
        efficiency=_as_array(own, "efficiency", links.efficiency, (n_links,)),
    )
    for name in ("from_node", "to_node"):
        idx = getattr(out, name)
        _check(bool(np.all((idx >= 0) & (idx < n_nodes))), own, name,
               f"node index outside [0, {n_nodes})")
    _check(bool(np.all(out.from_node != out.to_node)), own, "to_node", "link joins a node to itself")
    _check(bool(np.all(out.capacity_kw >= 0)), own, "capacity_kw", "must be >= 0")
    _check(bool(np.all((out.efficiency > 0) & (out.efficiency <= 1))), own, "efficiency",
           "must be in (0, 1]")
    return out


def reserve_profile_kwh(
    critical_load_kw: np.ndarray,
    step_s: float,
    reserve_h: float,
    warned_outage: np.ndarray | None = None,
) -> np.ndarray:
    """Block-wide stored energy to hold at the end of each step, raised ahead of a warned outage.

    In every step the reserve is the critical energy of the whole block for ``reserve_h``
    hours at the horizon's mean critical power: ``R_t = reserve_h * mean_t(sum_n crit[n, t])``.
    Before a warned outage window it is raised to the critical energy of the rest of that
    window, ``R_t = max(R_t, step_h * sum_{u in window, u > t} sum_n crit[n, u])``, so batteries
    fill up ahead of it.  Islanded steps get no reserve (the model ignores it there anyway).

    Parameters
    ----------
    critical_load_kw : ndarray, shape (N, T)
        Critical (tier 0) load forecast [kW].
    step_s : float
        Step length [s].
    reserve_h : float
        Hours of critical load to keep in store while grid-connected [h], >= 0.
    warned_outage : ndarray of bool, shape (T,), optional
        True in steps of a warned, planned outage.

    Returns
    -------
    ndarray, shape (T,)
        Reserve requirement [kWh], >= 0.
    """
    crit = np.asarray(critical_load_kw, dtype=float)
    if crit.ndim != 2:
        raise ValueError("reserve_profile_kwh.critical_load_kw: must be 2-D (nodes, steps)")
    if reserve_h < 0:
        raise ValueError("reserve_profile_kwh.reserve_h: must be >= 0")
    block_kw = crit.sum(axis=0)
    n_steps = block_kw.shape[0]
    reserve = np.full(n_steps, reserve_h * float(block_kw.mean()) if n_steps else 0.0)
    if warned_outage is None:
        return reserve
    warned = np.asarray(warned_outage, dtype=bool)
    if warned.shape != (n_steps,):
        raise ValueError("reserve_profile_kwh.warned_outage: shape must be (steps,)")
    energy_kwh = block_kw * step_s / 3600.0
    # Energy of the remainder of the next warned window, seen from the end of step t.
    # Walking backwards: inside a window accumulate, in a gap keep the next window's total.
    ahead = np.zeros(n_steps)
    running = 0.0
    later_warned = False
    for t in range(n_steps - 1, -1, -1):
        ahead[t] = running
        if warned[t]:
            running = (running if later_warned else 0.0) + energy_kwh[t]
        later_warned = bool(warned[t])
    reserve = np.maximum(reserve, ahead)
    reserve[warned] = 0.0
    return reserve

"""What a simulation run leaves behind: per-step arrays, final counters, settlements, statistics."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sim.plant.block import BlockPlant, PlantState, StepFlows

__all__ = ["Recorder", "SimResult", "NODE_SERIES", "LINK_SERIES"]

#: Per-step, per-node series [kW] or [kWh] (``stored_kwh`` at the END of the step).
NODE_SERIES = ("pv_available_kw", "pv_kw", "pv_curtailed_kw", "load_kw", "battery_kw", "grid_kw",
               "stored_kwh", "critical_shed_kw", "sheddable_shed_kw", "link_net_in_kw")
#: Per-step, per-link series [kW].
LINK_SERIES = ("link_flow_kw", "link_loss_kw")


@dataclass(eq=False)
class SimResult:
    """One policy's run.

    Attributes
    ----------
    policy : str
    node_ids, link_ids : tuple of str
    times_utc : DatetimeIndex
        Step starts (UTC).
    step_s : float
        Step length [s].
    series : dict of str to ndarray
        :data:`NODE_SERIES` of shape (T, N) and :data:`LINK_SERIES` of shape (T, L).
    grid_available : ndarray of bool, shape (T,)
        Utility present (True) or out (False) in each step.
    connected : ndarray of bool, shape (T,)
        The block ran grid-connected (utility present and the grid tie closed).
    opening_demand_kw : ndarray (N,)
        Contracted demand at the start (the same for every policy) [kW].
    modes : list of str
        Controller mode in each step ('' for the stand-alone rule).
    initial_stored_kwh : ndarray (N,)
    final_state : PlantState
        Stored energy and cumulative counters at the end.
    settlements : list of (PeriodReadings, PeriodSettlement)
        Every settled 30-minute period.
    replans : list of (total_s, solver_s, status)
        One entry per dispatch solve.
    fallback_decisions : int
        Control cycles that used the rule-based fallback.
    forecaster : str
    wall_s : float
        Wall time of the run [s].
    phase_s : dict of str to float
        Wall time per phase [s]: plant, settle (includes recording), and for controller
        policies forecast, build, solve (re-plans) and decide (every step).
    """

    policy: str
    node_ids: tuple[str, ...]
    link_ids: tuple[str, ...]
    times_utc: pd.DatetimeIndex
    step_s: float
    series: dict[str, np.ndarray]
    grid_available: np.ndarray
    connected: np.ndarray
    opening_demand_kw: np.ndarray
    modes: list[str]
    initial_stored_kwh: np.ndarray
    final_state: PlantState
    settlements: list = field(default_factory=list)
    replans: list = field(default_factory=list)
    fallback_decisions: int = 0
    forecaster: str = ""
    wall_s: float = 0.0
    phase_s: dict = field(default_factory=dict)

    @property
    def step_h(self) -> float:
        """Step length [h]."""
        return self.step_s / 3600.0


class Recorder:
    """Collects a run's per-step values into preallocated arrays."""

    def __init__(self, scenario, plant: BlockPlant, policy: str, initial: PlantState,
                 prior_month_import_kwh: np.ndarray) -> None:
        n_steps, n_nodes, n_links = scenario.n_steps, len(plant.node_ids), len(plant.link_ids)
        self.plant, self.policy, self.step_s = plant, policy, scenario.step_s
        self.times = pd.date_range(pd.Timestamp(scenario.start_utc), periods=n_steps,
                                   freq=pd.Timedelta(seconds=scenario.step_s))
        self.series = {name: np.zeros((n_steps, n_nodes)) for name in NODE_SERIES}
        self.series.update({name: np.zeros((n_steps, n_links)) for name in LINK_SERIES})
        self.grid_available = np.ones(n_steps, dtype=bool)
        self.connected = np.ones(n_steps, dtype=bool)
        self.opening_demand_kw = np.zeros(n_nodes)
        self.modes = [""] * n_steps
        self.initial_stored = initial.stored_kwh.copy()
        self.prior_month_import_kwh = np.asarray(prior_month_import_kwh, dtype=float)

    def record(self, k: int, flows: StepFlows, state: PlantState, pv_available: np.ndarray,
               load: np.ndarray, grid_ok: bool, controller_state, tie_open: bool = False) -> None:
        """Store step ``k``."""
        s = self.series
        s["pv_available_kw"][k] = pv_available
        s["pv_kw"][k] = flows.pv_kw
        s["pv_curtailed_kw"][k] = flows.pv_curtailed_kw
        s["load_kw"][k] = load
        s["battery_kw"][k] = flows.battery_kw
        s["grid_kw"][k] = flows.grid_kw
        s["stored_kwh"][k] = state.stored_kwh
        s["critical_shed_kw"][k] = flows.critical_shed_kw
        s["sheddable_shed_kw"][k] = flows.sheddable_shed_kw
        s["link_net_in_kw"][k] = self.plant.link_net_in_kw(flows.link_flow_kw)
        s["link_flow_kw"][k] = flows.link_flow_kw
        s["link_loss_kw"][k] = flows.link_loss_kw
        self.grid_available[k] = grid_ok
        self.connected[k] = grid_ok and not tie_open
        if controller_state is not None:
            self.modes[k] = controller_state.mode.value

    def result(self, state: PlantState, settlements: list, controller, wall_s: float) -> SimResult:
        """The finished run."""
        return SimResult(
            policy=self.policy, node_ids=self.plant.node_ids, link_ids=self.plant.link_ids,
            times_utc=self.times, step_s=self.step_s, series=self.series,
            grid_available=self.grid_available, connected=self.connected,
            opening_demand_kw=self.opening_demand_kw, modes=self.modes,
            initial_stored_kwh=self.initial_stored, final_state=state, settlements=settlements,
            replans=list(controller.replans), fallback_decisions=controller.fallback_decisions,
            forecaster=controller.forecaster_name, wall_s=wall_s)

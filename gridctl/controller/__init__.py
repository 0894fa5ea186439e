"""Controller core: pure functions from readings, forecast and state to a plan and setpoints.

No clock, file, socket or logging here: ``now`` is passed in and diagnostics are returned.
The daemon and the simulator drive one loop, :func:`run_cycle` (:mod:`gridctl.controller.loop`)::

    forecaster.observe(snapshot)                          # gridctl.forecast history
    result = run_cycle(site, state, snapshot, now, planner)
    state = result.state                                  # mode, plan, billing, origins
    write(result.decision.setpoints)                      # clamped, expiring, rule-abiding

where the driver's ``planner`` turns a :class:`PlanRequest` into a plan with a forecast,
:func:`build_problem` and a persistent :class:`optimizer.Dispatcher` (in a worker thread in
the daemon, at once in the simulator) and hands it back as a :class:`FinishedPlan`.
"""

from gridctl.controller.billing import demand_basis_kw, observe_billing, opening_billing
from gridctl.controller.decide import (
    accept_plan,
    decide,
    fallback_problem,
    idle_setpoints,
    max_plan_age_s,
    plan_step_index,
)
from gridctl.controller.loop import (
    FinishedPlan,
    PlanRequest,
    Planner,
    Step,
    observe,
    plan_deadline_s,
    replan_due,
    request_replan,
    run_cycle,
    step,
)
from gridctl.controller.problem import (
    build_problem,
    horizon_steps,
    plan_start_utc,
    prepare_problem,
    step_starts_utc,
)
from gridctl.controller.topology import SiteIndex, site_index
from gridctl.controller.transitions import grid_signal, initial_state, tie_flow_settled, transition
from gridctl.controller.types import (
    BillingState,
    ControllerState,
    Decision,
    DeviceHealth,
    Forecast,
    GridSignal,
    Mode,
    NodeBilling,
    NodeReading,
    OutageWindow,
    ReserveRequest,
    Setpoint,
    SetpointKind,
    Setpoints,
    Snapshot,
    Transition,
)

__all__ = [
    "BillingState", "ControllerState", "Decision", "DeviceHealth", "FinishedPlan", "Forecast",
    "GridSignal", "Mode", "NodeBilling", "NodeReading", "OutageWindow", "PlanRequest",
    "Planner", "ReserveRequest", "Setpoint", "SetpointKind", "Setpoints", "SiteIndex",
    "Snapshot", "Step", "Transition", "accept_plan", "build_problem", "decide",
    "demand_basis_kw", "fallback_problem", "grid_signal", "horizon_steps", "idle_setpoints",
    "initial_state", "max_plan_age_s", "observe", "observe_billing", "opening_billing",
    "plan_deadline_s", "plan_start_utc", "plan_step_index", "prepare_problem", "replan_due",
    "request_replan", "run_cycle", "site_index", "step", "step_starts_utc",
    "tie_flow_settled", "transition",
]

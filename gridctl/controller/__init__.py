"""Controller core: pure functions from readings, forecast and state to a plan and setpoints.

No clock, file, socket or logging here: ``now`` is passed in and diagnostics are returned.
One cycle, as the daemon and the simulator drive it::

    history.add_snapshot(snapshot)                        # gridctl.forecast.MeasurementHistory
    tr = transition(site, state, snapshot, now)           # mode state machine
    state = tr.state
    if replan_due(site, state, now):                      # off the event loop in the daemon
        start = plan_start_utc(site, now)                 # taken BEFORE solving
        forecast = forecast_for(site, history, now)       # gridctl.forecast
        problem = build_problem(site, state, snapshot, forecast, now)
        plan = dispatcher.solve(problem)                  # optimizer.Dispatcher, persistent
        state = accept_plan(state, plan, start, now_after_solve)
    decision = decide(site, state, snapshot, now)         # setpoints to write

If the mode changes while a solve is under way, drop its result (it assumed the old grid
availability): accept it only when ``state.mode`` is still the mode it was built for.
"""

from gridctl.controller.decide import (
    accept_plan,
    decide,
    fallback_problem,
    idle_setpoints,
    max_plan_age_s,
    plan_step_index,
    replan_due,
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
    ControllerState,
    Decision,
    DeviceHealth,
    Forecast,
    GridSignal,
    Mode,
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
    "ControllerState", "Decision", "DeviceHealth", "Forecast", "GridSignal", "Mode",
    "NodeReading", "OutageWindow", "ReserveRequest", "Setpoint", "SetpointKind", "Setpoints",
    "SiteIndex", "Snapshot", "Transition", "accept_plan", "build_problem", "decide",
    "fallback_problem", "grid_signal", "idle_setpoints", "horizon_steps", "initial_state", "max_plan_age_s",
    "plan_start_utc", "plan_step_index", "prepare_problem", "replan_due", "site_index",
    "step_starts_utc", "tie_flow_settled", "transition",
]

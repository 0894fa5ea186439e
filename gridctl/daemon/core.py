"""The seam between the daemon shell and the pure controller core.

The daemon calls the controller only through a :class:`Core`, so tests and benchmarks can run
the real core (the default) and the simulator drives the very same functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Core:
    """Pure functions of the controller (see :mod:`gridctl.controller`).

    Attributes
    ----------
    transition : callable
        ``(site, state, snapshot, now) -> Transition``: the mode state machine.
    decide : callable
        ``(site, state, snapshot, now) -> Decision``: plan step + real-time correction, or the
        rule-based fallback.
    build_problem : callable
        ``(site, state, snapshot, forecast, now) -> DispatchProblem``.
    accept_plan : callable
        ``(state, plan, plan_start, now) -> ControllerState``.
    plan_start : callable
        ``(site, now) -> datetime``: start of step 0 of a plan built at ``now``.
    replan_due : callable
        ``(site, state, now) -> bool``: the plan is missing, old or running out.
    forecaster : callable
        ``(site) -> forecaster`` with ``observe(snapshot)`` and ``forecast(now) -> Forecast``.
    initial_state : callable
        ``(site, now) -> ControllerState`` for a first start.
    """

    transition: Callable[..., Any]
    decide: Callable[..., Any]
    build_problem: Callable[..., Any]
    accept_plan: Callable[..., Any]
    forecaster: Callable[..., Any]
    initial_state: Callable[..., Any]
    plan_start: Callable[..., Any]
    replan_due: Callable[..., Any]


def default_core() -> Core:
    """The real controller core and forecast (imported here: they are heavy)."""
    import gridctl.controller as controller
    from gridctl.daemon.forecasting import HistoryForecaster

    return Core(transition=controller.transition, decide=controller.decide,
                build_problem=controller.build_problem, accept_plan=controller.accept_plan,
                forecaster=HistoryForecaster,
                initial_state=lambda _site, now: controller.initial_state(now),
                plan_start=controller.plan_start_utc, replan_due=controller.replan_due)

"""The solver's time limit is a per-solve budget on a persistent model.

HiGHS measures ``time_limit`` against its run clock, which keeps counting across ``run()``
calls on one ``Highs`` object. A persistent dispatcher that passed the per-solve limit as is
would, once the solves together had used that much time, get "time limit reached" with no
solution on every later solve: in the daemon after hours, in a simulated year after about
four weeks, every plan would silently become the fallback.
"""

from __future__ import annotations

import numpy as np

from optimizer import Dispatcher, PlanStatus, SolverOptions
from tests.optimizer.kit import make_problem

N_NODES, N_STEPS = 12, 96
RING = [(i, (i + 1) % N_NODES) for i in range(N_NODES)]


def _problem(rng: np.random.Generator, budget_s: float):
    hours = (np.arange(N_STEPS) * 0.25) % 24
    sun = np.clip(np.sin((hours - 6) / 12 * np.pi), 0, None)
    return make_problem(
        n_nodes=N_NODES, n_steps=N_STEPS, step_s=900.0,
        pv=rng.uniform(3, 6, (N_NODES, 1)) * sun, load=rng.uniform(0.3, 2.0, (N_NODES, 1, N_STEPS)),
        import_price=rng.uniform(25, 40, (N_NODES, N_STEPS)), export_price=8.0,
        stored=3.0, soc_max=8.0, charge_max=3.0, discharge_max=3.0, eta_c=0.95, eta_d=0.95,
        links=RING, link_capacity=5.0, link_efficiency=0.97,
        options=SolverOptions(time_limit_s=budget_s, mip_rel_gap=0.005),
    )


def test_each_solve_gets_its_own_budget() -> None:
    budget_s = 1.0  # about 50 times one solve of this size: only the cumulative clock can hit it
    rng = np.random.default_rng(11)
    dispatcher = Dispatcher()
    total_solver_s, statuses = 0.0, []
    while total_solver_s < 1.5 * budget_s and len(statuses) < 2000:
        plan = dispatcher.solve(_problem(rng, budget_s))
        statuses.append(plan.status)
        if plan.status is PlanStatus.FALLBACK:
            break
        total_solver_s += plan.solver_time_s
    assert statuses[-1] is not PlanStatus.FALLBACK, (
        f"solve {len(statuses)} fell back after {total_solver_s:.2f} s of solving in all: "
        f"{plan.notes}"
    )
    assert total_solver_s >= 1.5 * budget_s, "the solves never used more than one budget together"

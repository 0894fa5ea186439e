"""Time limits, the persistent model, warm starts and input validation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from optimizer import Dispatcher, DispatchProblem, PlanStatus, SolverOptions, fallback_plan
from tests.optimizer.kit import assert_valid, make_problem


def _hard_milp(time_limit_s: float, seed: int = 1, n: int = 40, t: int = 48) -> DispatchProblem:
    """Homes in a chain, half-hour steps, feed-in premiums; at the default size a MILP that
    HiGHS cannot finish in a millisecond."""
    rng = np.random.default_rng(seed)
    return make_problem(
        n_nodes=n, n_steps=t, n_tiers=2, step_s=1800.0, pv=rng.uniform(0, 5, (n, t)),
        load=rng.uniform(0, 2, (n, 2, t)), import_price=rng.uniform(20, 40, (n, t)),
        export_price=rng.uniform(10, 45, (n, t)), import_limit=8.0, export_limit=8.0,
        stored=2.0, soc_max=8.0, charge_max=3.0, discharge_max=3.0, eta_c=0.95, eta_d=0.95,
        wear=2.0, terminal=15.0, links=[(i, i + 1) for i in range(n - 1)], link_capacity=4.0,
        link_efficiency=0.95, options=SolverOptions(time_limit_s=time_limit_s, mip_rel_gap=0.0))


def test_time_out_gives_an_incumbent_no_worse_than_the_fallback():
    problem = _hard_milp(time_limit_s=0.001)
    plan = Dispatcher(all_binary=True).solve(problem)
    # The fallback plan is offered as MIP start, so even a time-out has an incumbent.
    assert plan.status in (PlanStatus.TIME_LIMIT_FEASIBLE, PlanStatus.FALLBACK)
    assert plan.objective_jpy <= fallback_plan(problem).objective_jpy + 1e-6
    assert_valid(problem, plan)


def test_time_out_without_mip_start_gives_the_fallback():
    problem = _hard_milp(time_limit_s=0.001)
    plan = Dispatcher(all_binary=True, warm_start=False).solve(problem)
    assert plan.status is PlanStatus.FALLBACK
    assert "Time limit" in plan.notes[0]
    assert np.isnan(plan.mip_gap)
    assert_valid(problem, plan)


def test_model_is_built_once_per_shape_and_updated_in_place():
    dispatcher = Dispatcher()
    first = make_problem(n_nodes=2, n_steps=3, pv=[[4.0, 0, 0], [0, 0, 0]], load=1.0,
                         links=[(0, 1)], link_capacity=3.0, link_efficiency=0.9, soc_max=5.0,
                         charge_max=2.0, discharge_max=2.0)
    dispatcher.solve(first)
    model = dispatcher._model
    assert dispatcher.last_build_s > 0
    second = dataclasses.replace(first, pv_available_kw=np.array([[0, 3.0, 0], [1.0, 0, 0]]))
    plan = dispatcher.solve(second)
    assert dispatcher._model is model and dispatcher.last_build_s == 0.0
    assert plan.objective_jpy == pytest.approx(Dispatcher().solve(second).objective_jpy, abs=1e-6)
    longer = make_problem(n_nodes=2, n_steps=4, links=[(0, 1)], link_capacity=3.0,
                          link_efficiency=0.9)
    dispatcher.solve(longer)
    assert dispatcher._model is not model


def test_rolling_warm_start_matches_cold_solves():
    # Feed-in premiums make it a MILP, so the shifted previous plan is offered as MIP start.
    dispatcher = Dispatcher()
    small = _hard_milp(time_limit_s=30.0, seed=3, n=4, t=8)
    stored = small.battery.stored_kwh
    for step in range(3):
        problem = dataclasses.replace(
            small, pv_available_kw=np.roll(small.pv_available_kw, -step, axis=1),
            battery=dataclasses.replace(small.battery, stored_kwh=stored))
        warm = dispatcher.solve(problem)
        cold = Dispatcher(warm_start=False).solve(problem)
        assert warm.used_binaries and warm.status is PlanStatus.OPTIMAL
        assert warm.objective_jpy == pytest.approx(cold.objective_jpy, rel=1e-9, abs=1e-6)
        assert_valid(problem, warm)
        stored = warm.stored_kwh[:, 0]


@pytest.mark.parametrize("change, message", [
    (dict(pv_available_kw=np.ones((1, 3))), "DispatchProblem.load_kw: shape (1, 1, 2) != expected (1, 1, 3)"),
    (dict(reserve_kwh=np.ones(3)), "DispatchProblem.reserve_kwh: shape (3,) != expected (2,)"),
    (dict(node_ids=("a", "a")), "DispatchProblem.node_ids: not unique"),
    (dict(voll=[100.0, 200.0], n_tiers=2), "must strictly decrease"),
    (dict(load=-1.0), "DispatchProblem.load_kw: must be >= 0"),
    (dict(soc_min=5.0, soc_max=1.0), "BatteryData.soc_max_kwh: must be >= soc_min_kwh"),
    (dict(eta_c=0.0), "BatteryData.charge_efficiency: must be in (0, 1]"),
    (dict(n_nodes=2, links=[(0, 0)], link_capacity=1.0, link_efficiency=1.0),
     "LinkData.to_node: link joins a node to itself"),
    (dict(n_nodes=2, links=[(0, 5)], link_capacity=1.0, link_efficiency=1.0),
     "LinkData.to_node: node index outside [0, 2)"),
    (dict(import_price=np.nan), "GridData.import_price_jpy_per_kwh: contains NaN"),
])
def test_bad_input_is_one_clear_line(change, message):
    fields = {f.name for f in dataclasses.fields(DispatchProblem)}
    with pytest.raises(ValueError) as err:
        if set(change) <= fields:  # replace a field of a valid problem
            dataclasses.replace(make_problem(), **change)
        else:
            make_problem(**change)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_solver_options_are_checked():
    with pytest.raises(ValueError, match="SolverOptions.time_limit_s: must be > 0"):
        SolverOptions(time_limit_s=0.0)


def test_plan_arrays_are_read_only():
    plan = Dispatcher().solve(make_problem())
    with pytest.raises(ValueError):
        plan.grid_import_kw[0, 0] = 1.0

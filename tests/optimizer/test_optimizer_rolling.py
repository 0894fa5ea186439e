"""Rolling re-plans: the roll is recognised; the shifted warm start changes no answer."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from optimizer import Dispatcher, PlanStatus
from optimizer.accounting import clamp_initial_stored
from optimizer.dispatcher import step_shift
from optimizer.layout import binaries_needed
from tests.optimizer.kit import assert_valid, make_problem

N_NODES, N_STEPS, DAYS_STEPS = 8, 24, 72
CHAIN = [(i, i + 1) for i in range(N_NODES - 1)]


def _series(seed: int = 5) -> dict[str, np.ndarray]:
    """Three days of hourly PV [kW], load [kW] and import price [JPY/kWh] for the block."""
    rng = np.random.default_rng(seed)
    hours = np.arange(DAYS_STEPS) % 24
    sun = np.clip(np.sin((hours - 6) / 12 * np.pi), 0, None)
    return {"pv": rng.uniform(2, 6, (N_NODES, 1)) * sun,
            "load": rng.uniform(0.3, 2.5, (N_NODES, 2, DAYS_STEPS)),
            "price": np.where((hours >= 17) & (hours < 21), 40.0, 25.0)}


def _problem_at(series: dict, start: int, stored_kwh, grey_kwh=0.0) -> object:
    window = slice(start, start + N_STEPS)
    return make_problem(
        n_nodes=N_NODES, n_steps=N_STEPS, n_tiers=2, step_s=3600.0, pv=series["pv"][:, window],
        load=series["load"][:, :, window], import_price=series["price"][window],
        export_price=8.0, stored=stored_kwh, soc_min=0.5, soc_max=8.0, charge_max=3.0,
        discharge_max=3.0, eta_c=0.95, eta_d=0.95, wear=2.0, terminal=20.0,
        battery_export=False, links=CHAIN, link_capacity=4.0, link_efficiency=0.96,
        reserve=3.0, grey=grey_kwh)


def test_step_shift_reads_the_roll_off_the_data():
    series = _series()
    base = _problem_at(series, 3, 4.0)
    assert step_shift(base, base) == 0
    assert step_shift(base, _problem_at(series, 4, 4.0)) == 1
    assert step_shift(base, _problem_at(series, 5, 4.0)) == 2
    # new load forecasts on the same steps (a re-plan within the step) are no roll
    redrawn = np.random.default_rng(9).uniform(0.3, 2.5, base.load_kw.shape)
    assert step_shift(base, dataclasses.replace(base, load_kw=redrawn)) == 0


@pytest.mark.parametrize("drift", [0.0, 0.1])
def test_rolling_replans_match_fresh_solves(drift):
    """Each persistent re-plan, warm-started from the shifted basis, has the objective of a
    fresh solve of the same problem; with drift, forecasts and state stray from the plan."""
    rng = np.random.default_rng(2)
    series = _series()
    dispatcher, stored = Dispatcher(), np.full(N_NODES, 4.0)
    for start in range(6):
        problem = _problem_at(series, start, stored)
        if drift:
            problem = dataclasses.replace(
                problem, load_kw=problem.load_kw * rng.uniform(1 - drift, 1 + drift,
                                                               problem.load_kw.shape))
        plan = dispatcher.solve(problem)
        fresh = Dispatcher().solve(problem)
        assert plan.status is PlanStatus.OPTIMAL and fresh.status is PlanStatus.OPTIMAL
        assert plan.objective_jpy == pytest.approx(fresh.objective_jpy, rel=1e-7, abs=1e-6)
        assert_valid(problem, plan)
        stored = plan.stored_kwh[:, 0] + drift * rng.normal(0.0, 8.0, N_NODES)
        stored = np.clip(stored, 0.0, 8.0)


def test_primal_start_only_when_the_shifted_plan_still_fits():
    series = _series()
    dispatcher = Dispatcher()
    plan = dispatcher.solve(_problem_at(series, 0, 4.0))
    model, values = dispatcher._model, dispatcher._last_values

    def fits(problem) -> bool:
        stored0, grey0, _ = clamp_initial_stored(problem)
        model.update(problem, binaries_needed(problem), stored0, grey0)
        return model.shifted_values_fit(values, 1)

    grey = plan.stored_grey_kwh[:, 0]
    assert fits(_problem_at(series, 1, plan.stored_kwh[:, 0], grey))       # state as planned
    assert not fits(_problem_at(series, 1, plan.stored_kwh[:, 0] + 0.7, grey))  # state drifted

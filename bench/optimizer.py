"""Benchmark the dispatch optimizer against a naive all-binary formulation on the same data.

Run ``python bench/optimizer.py --quick`` (Misono and 50 homes, 3 re-plans, under 2 minutes)
or without ``--quick`` for every size (Misono, 50, 200 and 1,000 homes, 10 re-plans; Misono,
200 and 1,000 homes again with drift, see below); ``--only homes1000_drift`` runs one case.
One JSON object per case is printed per line.  Nothing here is asserted by the tests.

The blocks are synthetic (``make_block``), shaped like the Misono reference block: homes with
about 4.5 kW PV and 5-13 kWh batteries (one home in five without a battery, FIT meters that
forbid battery export), a convenience store and a shopping mall with demand charges, every
node behind a router and the routers linked.  A warned outage window makes part of each
horizon islanded, so shedding and the outage reserve are exercised too.  The links form a
tree like a real block's feeders: homes in chains of five, five chains (25 homes) into each
store's router, every store into the mall's hub (no ring, so no long loops).

Two kinds of roll: the plain cases see the same data one step on and the state the plan
predicted (perfect foresight, the best case for the warm start); the ``_drift`` cases redraw
the forecasts and let the measured state stray from the plan at each re-plan, as in the daemon.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optimizer import (  # noqa: E402
    BatteryData,
    Dispatcher,
    DispatchProblem,
    GridData,
    LinkData,
    SolverOptions,
    naive_all_binary,
    reserve_profile_kwh,
)

STEP_S = 900.0
STEPS_PER_DAY = 96
#: Value of lost load per tier: critical, comfort, deferrable [JPY/kWh].
VOLL_JPY_PER_KWH = np.array([2000.0, 300.0, 100.0])


def _profiles(rng: np.random.Generator, n_homes: int, days: int) -> dict[str, np.ndarray]:
    """Per-node PV shape [kW per kW peak] and home load [kW] over ``days`` of 15-min steps."""
    hours = (np.arange(days * STEPS_PER_DAY) * STEP_S / 3600.0) % 24.0
    sun = np.clip(np.sin(np.pi * (hours - 6.0) / 12.0), 0.0, None) ** 1.3
    cloud = np.clip(1.0 - 0.5 * rng.random((n_homes, hours.size)) ** 3, 0.2, 1.0)
    base = 0.25 + 0.9 * np.exp(-((hours - 7.5) / 1.2) ** 2) + 1.4 * np.exp(-((hours - 19.5) / 2.0) ** 2)
    scale = rng.uniform(0.7, 1.3, (n_homes, 1))
    load = scale * base[None, :] * rng.uniform(0.85, 1.15, (n_homes, hours.size))
    return {"hours": hours, "sun": sun, "cloud": cloud, "home_load": load}


def make_block(n_homes: int, seed: int = 7) -> dict:
    """Two days of synthetic data for a block of ``n_homes`` homes, stores and one mall.

    Returns a dict of node-level arrays (full 2-day series) that :func:`problem_at` slices.
    """
    rng = np.random.default_rng(seed)
    n_stores = max(1, n_homes // 25)
    prof = _profiles(rng, n_homes, days=2)
    hours, sun = prof["hours"], prof["sun"]
    ids = [f"home{i + 1:04d}" for i in range(n_homes)] + [f"store{i + 1}" for i in range(n_stores)]
    ids.append("mall")
    n = len(ids)
    pv_peak = np.concatenate([rng.uniform(4.0, 5.0, n_homes), np.full(n_stores, 10.0), [60.0]])
    pv = pv_peak[:, None] * sun[None, :]
    pv[:n_homes] *= prof["cloud"]
    store_load = 9.0 + 3.0 * np.exp(-((hours - 12.5) / 4.0) ** 2)
    mall_load = 40.0 + 160.0 * ((hours > 9.5) & (hours < 21.5))
    load_total = np.vstack([prof["home_load"], np.tile(store_load, (n_stores, 1)), mall_load[None]])
    crit_share = np.concatenate([np.full(n_homes, 0.3), np.full(n_stores, 0.5), [0.25]])
    critical = np.minimum(load_total, 0.2 + crit_share[:, None] * load_total * 0.5)
    comfort = 0.6 * (load_total - critical)
    load = np.stack([critical, comfort, load_total - critical - comfort], axis=1)
    cap = np.concatenate([rng.uniform(5.0, 13.0, n_homes), np.zeros(n_stores), [200.0]])
    cap[:n_homes][::5] = 0.0  # one home in five has no battery
    power = np.where(cap > 0, np.maximum(cap / 2.0, 2.0), 0.0)
    from_node, to_node, link_cap = _links(n_homes, n_stores)
    return {
        "ids": tuple(ids), "n_homes": n_homes, "pv": pv, "load": load, "hours": hours,
        "cap": cap, "power": power, "stored": 0.5 * cap,
        "links": (from_node, to_node, link_cap), "n": n,
    }


def _links(n_homes: int, n_stores: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Homes in chains of five; each chain head to a store; every store to the mall."""
    mall = n_homes + n_stores
    pairs, caps = [], []
    for h in range(n_homes):
        if h % 5:
            pairs.append((h - 1, h))
            caps.append(6.0)
        else:
            pairs.append((n_homes + (h // 25) % n_stores, h))
            caps.append(10.0)
    for s in range(n_stores):
        pairs.append((n_homes + s, mall))
        caps.append(30.0)
    arr = np.array(pairs, dtype=int)
    return arr[:, 0], arr[:, 1], np.array(caps)


def problem_at(block: dict, start: int, stored_kwh: np.ndarray, steps: int = STEPS_PER_DAY,
               options: SolverOptions | None = None) -> DispatchProblem:
    """The ``steps``-long problem starting at step ``start`` of the block's data."""
    n, n_homes = block["n"], block["n_homes"]
    window = slice(start, start + steps)
    hours = block["hours"][window]
    imp = np.where((hours >= 17) & (hours < 21), 40.0, np.where((hours >= 7) & (hours < 23), 30.0, 25.0))
    exp = np.full(steps, 8.5)
    # A warned outage from 18:00 to 21:00 on the first day (absolute steps 72..83).
    absolute = np.arange(start, start + steps)
    outage = (absolute >= 72) & (absolute < 84)
    load = block["load"][:, :, window]
    from_node, to_node, link_cap = block["links"]
    cap, power = block["cap"], block["power"]
    is_home = np.arange(n) < n_homes
    return DispatchProblem(
        node_ids=block["ids"], step_s=STEP_S,
        pv_available_kw=block["pv"][:, window], pv_curtailable=np.ones(n, bool),
        load_kw=load, value_of_lost_load_jpy_per_kwh=VOLL_JPY_PER_KWH,
        grid=GridData(
            import_price_jpy_per_kwh=np.tile(imp, (n, 1)),
            export_price_jpy_per_kwh=np.tile(exp, (n, 1)),
            import_limit_kw=np.where(is_home, 12.0, 250.0),
            export_limit_kw=np.where(is_home, 6.0, 50.0),
            available=~outage,
            demand_charge_jpy_per_kw=np.where(is_home, 0.0, 60.0),
            peak_import_so_far_kw=np.where(is_home, 0.0, np.where(np.arange(n) == n - 1, 150.0, 8.0)),
        ),
        battery=BatteryData(
            stored_kwh=stored_kwh, soc_min_kwh=0.1 * cap, soc_max_kwh=cap,
            charge_max_kw=power, discharge_max_kw=power,
            charge_efficiency=np.full(n, 0.95), discharge_efficiency=np.full(n, 0.95),
            wear_cost_jpy_per_kwh=np.full(n, 2.0), terminal_value_jpy_per_kwh=np.full(n, 20.0),
            grid_export_allowed=~is_home,
        ),
        links=LinkData(from_node, to_node, link_cap, np.full(len(link_cap), 0.96)),
        reserve_kwh=reserve_profile_kwh(load[:, 0, :], STEP_S, 2.0, outage),
        options=options or SolverOptions(time_limit_s=600.0, mip_rel_gap=0.005, threads=1),
    )


def _roll(dispatcher: Dispatcher, problems: list[DispatchProblem]) -> list[dict]:
    """Solve in order; wall and CPU time per solve, without the model build [s]."""
    out = []
    for problem in problems:
        start_s, start_cpu_s = time.perf_counter(), time.process_time()
        plan = dispatcher.solve(problem)
        wall_s, cpu_s = time.perf_counter() - start_s, time.process_time() - start_cpu_s
        build_s = dispatcher.last_build_s
        out.append({"plan": plan, "wall_s": wall_s, "cpu_s": cpu_s, "build_s": build_s,
                    "solve_wall_s": wall_s - build_s})
    return out


def _median(runs: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 4)


def _drifted(problem: DispatchProblem, rng: np.random.Generator, drift: float) -> DispatchProblem:
    """The problem with every PV and load forecast value scaled by ``U(1 - drift, 1 + drift)``."""
    return dataclasses.replace(
        problem,
        pv_available_kw=problem.pv_available_kw * rng.uniform(1 - drift, 1 + drift,
                                                              problem.pv_available_kw.shape),
        load_kw=problem.load_kw * rng.uniform(1 - drift, 1 + drift, problem.load_kw.shape))


def run_case(name: str, n_homes: int, replans: int, naive_replans: int,
             naive_time_limit_s: float, drift: float = 0.0) -> dict:
    """Solve ``replans + 1`` rolling problems (the first builds the model), then re-solve the
    first ``naive_replans`` re-plan problems with the naive all-binary formulation.

    With ``drift`` = 0 every re-plan sees the same data one step on and the state the plan
    predicted (a perfect-foresight roll).  With ``drift`` > 0 each re-plan's PV and load
    forecasts are redrawn within +-drift and the measured stored energy strays from the plan
    by a normal error of ``drift`` times the capacity, as in a real daemon.
    """
    block = make_block(n_homes)
    stored = block["stored"].copy()
    rng = np.random.default_rng(11)
    problems, fast, runs = [], Dispatcher(), []
    for step in range(replans + 1):
        problem = problem_at(block, step, stored)
        if drift:
            problem = _drifted(problem, rng, drift)
        problems.append(problem)
        runs += _roll(fast, [problem])
        # The state rolls forward along the fast plan so both formulations see the same data.
        stored = runs[-1]["plan"].stored_kwh[:, 0].copy()
        if drift:
            stored = np.clip(stored + rng.normal(0.0, drift, stored.shape) * block["cap"],
                             0.0, block["cap"])
    naive_opts = SolverOptions(time_limit_s=naive_time_limit_s, mip_rel_gap=0.005, threads=1)
    naive_runs = _roll(naive_all_binary(),
                       [_with_options(p, naive_opts) for p in problems[1: naive_replans + 1]])
    replan = runs[1:]
    last, naive_last = runs[len(naive_runs)]["plan"], naive_runs[-1]["plan"]
    # A fallback plan (solver time-out without a solution) has no solver time.
    overhead = [(r["wall_s"] - r["plan"].solver_time_s) / r["plan"].solver_time_s
                for r in replan if r["plan"].solver_time_s > 0] or [float("nan")]
    statuses = [r["plan"].status.value for r in runs]
    return {
        "case": name, "drift": drift, "nodes": block["n"], "homes": n_homes, "steps": problems[0].n_steps,
        "links": problems[0].n_links, "replans": len(replan), "naive_replans": len(naive_runs),
        "build_s": round(runs[0]["build_s"], 4),
        "build_first_solve_s": round(runs[0]["wall_s"], 4),
        "build_first_solve_cpu_s": round(runs[0]["cpu_s"], 4),
        "replan_median_s": _median(replan, "wall_s"),
        "replan_cpu_median_s": _median(replan, "cpu_s"),
        "solver_median_s": round(statistics.median(r["plan"].solver_time_s for r in replan), 4),
        "python_overhead_pct": round(100 * statistics.median(overhead), 1),
        "used_binaries": bool(last.used_binaries), "status": last.status.value,
        "statuses": {v: statuses.count(v) for v in sorted(set(statuses))},
        "naive_replan_median_s": _median(naive_runs, "solve_wall_s"),
        "naive_replan_cpu_median_s": _median(naive_runs, "cpu_s"),
        "naive_status": naive_last.status.value,
        "objective_jpy": round(last.objective_jpy, 3),
        "naive_objective_jpy": round(naive_last.objective_jpy, 3),
        "objective_rel_diff": round((naive_last.objective_jpy - last.objective_jpy)
                                    / abs(last.objective_jpy), 6),
        "mip_gap": last.mip_gap, "naive_mip_gap": naive_last.mip_gap,
        "speedup_x": round(_median(naive_runs, "solve_wall_s") / _median(replan, "wall_s"), 1),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }


def _with_options(problem: DispatchProblem, options: SolverOptions) -> DispatchProblem:
    fields = {name: getattr(problem, name) for name in problem.__dataclass_fields__}
    fields["options"] = options
    return DispatchProblem(**fields)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Misono and 50 homes, 3 re-plans")
    parser.add_argument("--only", help="run only the case of this name (e.g. homes1000)")
    args = parser.parse_args(argv)
    # (case, homes, re-plans, naive re-plans, naive time limit [s]); the naive MILP is slow,
    # so it re-solves only the first few re-plan problems.
    if args.quick:
        cases = [("misono", 5, 3, 3, 60.0), ("homes50", 50, 3, 1, 60.0)]
    else:
        cases = [("misono", 5, 10, 10, 60.0), ("homes50", 50, 10, 3, 60.0),
                 ("homes200", 200, 10, 1, 60.0), ("homes1000", 1000, 10, 1, 60.0),
                 ("misono_drift", 5, 10, 10, 60.0, 0.1), ("homes200_drift", 200, 10, 1, 60.0, 0.1),
                 ("homes1000_drift", 1000, 10, 1, 60.0, 0.1)]
    cases = [case for case in cases if args.only in (None, case[0])]
    for name, *params in cases:
        print(json.dumps(run_case(name, *params)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

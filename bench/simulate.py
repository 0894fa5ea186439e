"""Benchmark the simulator: a week and a year of the Misono block, 15-minute steps, hourly re-plans.

Prints one JSON object per case: wall time, steps per second, re-plans and time per re-plan,
and the wall time per phase (forecast, problem build, solve, decide, plant, settlement).
Baselines are excluded from the year (the target is the rolling controller); the week case
also times the full request with both baselines on two processes, as ``gridctl simulate`` runs.

    python bench/simulate.py            # week, week with baselines, year
    python bench/simulate.py --quick    # the week cases only
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridctl.config import load_site  # noqa: E402
from sim.runner import Scenario, run_policy  # noqa: E402
from sim.runner.forecasting import HISTORY_DAYS  # noqa: E402
from sim.runner.scenario import SimulationRequest, run_request  # noqa: E402
from sim.profiles import synthetic_profiles  # noqa: E402

CONFIG = ROOT / "configs" / "misono.yaml"
UTC = dt.timezone.utc


def rolling_case(name: str, start: dt.datetime, days: int) -> dict:
    """Time the rolling controller alone over ``days`` (profile building timed separately)."""
    site = load_site(CONFIG)
    t0 = time.perf_counter()
    profiles = synthetic_profiles(site, start - dt.timedelta(days=HISTORY_DAYS),
                                  start + dt.timedelta(days=days), 900.0, seed=1)
    profiles_s = time.perf_counter() - t0
    scenario = Scenario(site, profiles, start, start + dt.timedelta(days=days), 900.0, 3600.0)
    t0, c0 = time.perf_counter(), time.process_time()
    result = run_policy(scenario, "rolling")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    replan = np.array([r[0] for r in result.replans])
    solver = np.array([r[1] for r in result.replans])
    # cpu_s: this process's CPU time; well below wall_s when other work shares the two cores
    return {"case": name, "days": days, "steps": scenario.n_steps, "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "steps_per_s": round(scenario.n_steps / wall, 1), "profiles_s": round(profiles_s, 2),
            "replans": int(replan.size), "replan_median_s": round(float(np.median(replan)), 4),
            "replan_mean_s": round(float(replan.mean()), 4),
            "replan_p95_s": round(float(np.percentile(replan, 95)), 4),
            "solver_median_s": round(float(np.median(solver)), 4),
            "phase_s": {k: round(v, 2) for k, v in result.phase_s.items()},
            "settled_periods": len(result.settlements)}


def request_case(start: dt.datetime, days: int) -> dict:
    """The whole ``gridctl simulate`` request (rolling + both baselines, 2 processes, files)."""
    with tempfile.TemporaryDirectory() as folder:
        req = SimulationRequest(config_path=CONFIG, start_utc=start, days=days, out_dir=Path(folder))
        t0 = time.perf_counter()
        doc = run_request(req, workers=2)[1]
        wall = time.perf_counter() - t0
    return {"case": f"request_{days}d_with_baselines", "wall_s": round(wall, 2),
            "policy_wall_s": {p: k["wall_s"] for p, k in doc["policies"].items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="week cases only")
    args = parser.parse_args()
    start = dt.datetime(2026, 7, 31, 15, tzinfo=UTC)  # 2026-08-01 00:00 JST
    print(json.dumps(rolling_case("week_rolling", start, 7)), flush=True)
    print(json.dumps(request_case(start, 7)), flush=True)
    if not args.quick:
        year_start = dt.datetime(2025, 12, 31, 15, tzinfo=UTC)  # 2026-01-01 00:00 JST
        print(json.dumps(rolling_case("year_rolling", year_start, 365)), flush=True)


if __name__ == "__main__":
    main()

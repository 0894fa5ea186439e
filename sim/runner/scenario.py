"""A whole simulation request: profiles, outages, the policies run side by side, KPIs and files.

Tasks are ``(seed, policy)`` pairs; with ``workers > 1`` they run in separate processes (both
cores), each writing its own files and returning its KPIs, and progress is reported through a
queue. Savings against the stand-alone baseline are filled in once all tasks are back.
"""

from __future__ import annotations

import datetime as dt
import queue as queue_mod
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from decimal import Decimal
from multiprocessing import Manager
from pathlib import Path
from typing import Callable

from gridctl.config import SiteConfig, load_site
from sim.kpis import policy_kpis
from sim.outages import OutageWindow
from sim.plots import write_plots
from sim.profiles import ProfileSet, read_measured_csv, synthetic_profiles
from sim.runner.forecasting import HISTORY_DAYS
from sim.runner.loop import Scenario, run_policy
from sim.runner.outputs import write_kpis, write_ledger, write_settlement_csv, write_timeseries
from sim.runner.switches import shedding_actuated

__all__ = ["SimulationRequest", "build_scenario", "run_request", "POLICIES"]

POLICIES = ("rolling", "foresight", "standalone")


@dataclass(frozen=True)
class SimulationRequest:
    """What an operator asked for (already parsed and validated by the CLI).

    Parameters
    ----------
    config_path : Path
    start_utc : datetime
        First simulated instant, on a JST half hour.
    days : float
        Simulated span [days].
    out_dir : Path
    step_s : float
        Plant/control step [s].
    replan_s : float or None
        Re-plan period [s]; None: the site's ``control.replan_period_s`` on the step grid.
    seeds : tuple of int
        One scenario per seed (outputs in ``seed-<S>/`` when more than one).
    profiles_csv : Path or None
        Measured profiles; nodes absent from it and the history before it are synthetic.
    outages : tuple of OutageWindow
    baselines : tuple of str
        Baseline policies to run besides ``rolling``.
    sky : str
        ``stochastic`` or ``clear``.
    initial_soc_pct : float
    """

    config_path: Path
    start_utc: dt.datetime
    days: float
    out_dir: Path
    step_s: float = 900.0
    replan_s: float | None = None
    seeds: tuple[int, ...] = (1,)
    profiles_csv: Path | None = None
    outages: tuple[OutageWindow, ...] = field(default_factory=tuple)
    baselines: tuple[str, ...] = ("foresight", "standalone")
    sky: str = "stochastic"
    initial_soc_pct: float = 50.0

    @property
    def end_utc(self) -> dt.datetime:
        return self.start_utc + dt.timedelta(days=self.days)


def build_profiles(site: SiteConfig, req: SimulationRequest, seed: int) -> ProfileSet:
    """True profiles over ``[start - history, end)``: synthetic, overlaid with measured data."""
    first = req.start_utc - dt.timedelta(days=HISTORY_DAYS)
    synthetic = synthetic_profiles(site, first, req.end_utc, req.step_s, seed, sky=req.sky)  # type: ignore[arg-type]
    if req.profiles_csv is None:
        return synthetic
    measured, missing = read_measured_csv(req.profiles_csv, synthetic.node_ids, req.start_utc,
                                          req.end_utc, req.step_s)
    k0 = synthetic.index_of(req.start_utc)
    pv, load = synthetic.pv_kw.copy(), synthetic.load_kw.copy()
    for i, node in enumerate(synthetic.node_ids):
        if node not in missing:
            pv[i, k0:], load[i, k0:] = measured.pv_kw[i], measured.load_kw[i]
    source = f"{measured.source}" + (f"; synthetic for {', '.join(missing)}" if missing else "")
    return replace(synthetic, pv_kw=pv, load_kw=load, source=source)


def build_scenario(site: SiteConfig, req: SimulationRequest, seed: int) -> Scenario:
    """The scenario of one seed."""
    return Scenario(site=site, profiles=build_profiles(site, req, seed), start_utc=req.start_utc,
                    end_utc=req.end_utc, step_s=req.step_s, replan_s=req.replan_s,
                    outages=req.outages, initial_soc_pct=req.initial_soc_pct)


def _seed_dir(req: SimulationRequest, seed: int) -> Path:
    return req.out_dir if len(req.seeds) == 1 else req.out_dir / f"seed-{seed}"


def run_task(req: SimulationRequest, seed: int, policy: str,
             progress: Callable[[int, int], None] | None = None) -> tuple[int, str, dict]:
    """Run one policy of one seed; the rolling run also writes the time series, ledger, plots."""
    site = load_site(req.config_path)
    scenario = build_scenario(site, req, seed)
    result = run_policy(scenario, policy, progress)  # type: ignore[arg-type]
    kpis = policy_kpis(site, result, req.outages)
    kpis["profiles"] = scenario.profiles.source
    if policy == "rolling":
        out = _seed_dir(req, seed)
        out.mkdir(parents=True, exist_ok=True)
        write_timeseries(out, result)
        write_settlement_csv(out, result)
        ledger = write_ledger(out, result)
        kpis["ledger"] = str(ledger) if ledger else "not recorded"
        kpis["plots"] = [p.name for p in write_plots(out, site, result)]
    return seed, policy, kpis


def _queued_task(req: SimulationRequest, seed: int, policy: str, q) -> tuple[int, str, dict]:
    last = [-1]

    def report(k: int, n: int) -> None:
        pct = k * 200 // n  # half-percent resolution keeps the queue quiet
        if pct != last[0] or k == n:
            last[0] = pct
            q.put((seed, policy, k, n))

    return run_task(req, seed, policy, report)


def add_savings(per_policy: dict[str, dict]) -> None:
    """Fill ``savings_vs_standalone_jpy`` (total costs) per member and block, in place."""
    base = per_policy.get("standalone")
    if base is None:
        return
    for kpis in per_policy.values():
        for scope, ref in [("block", base["block"])] + [
                (m, base["members"][m]) for m in kpis["members"]]:
            target = kpis["block"] if scope == "block" else kpis["members"][scope]
            target["savings_vs_standalone_jpy"] = str(
                Decimal(ref["total_cost_jpy"]) - Decimal(target["total_cost_jpy"]))


def _scenario_info(req: SimulationRequest, seed: int) -> dict:
    return {"config": str(req.config_path), "start_utc": req.start_utc.isoformat(),
            "end_utc": req.end_utc.isoformat(), "days": req.days, "step_s": req.step_s,
            "replan_s": req.replan_s, "seed": seed, "sky": req.sky,
            "outages": [w.spec for w in req.outages],
            "outage_warning_h": [w.warning.total_seconds() / 3600 for w in req.outages],
            "shedding": "actuated" if shedding_actuated(load_site(req.config_path)) else "not actuated"}


def run_request(req: SimulationRequest, workers: int = 1,
                progress: Callable[[int, str, int, int], None] | None = None) -> dict[int, dict]:
    """Run every (seed, policy) task and write ``kpis.json`` per seed; returns KPIs by seed.

    ``progress(seed, policy, step, n_steps)`` is called in this process as tasks advance.
    """
    tasks = [(seed, p) for seed in req.seeds for p in ("rolling",) + tuple(req.baselines)]
    results: dict[int, dict[str, dict]] = {seed: {} for seed in req.seeds}
    if workers <= 1:
        for seed, policy in tasks:
            cb = (lambda k, n, s=seed, p=policy: progress(s, p, k, n)) if progress else None
            results[seed][policy] = run_task(req, seed, policy, cb)[2]
    else:
        with Manager() as manager, ProcessPoolExecutor(max_workers=workers) as pool:
            q = manager.Queue()
            futures = [pool.submit(_queued_task, req, seed, policy, q) for seed, policy in tasks]
            while not all(f.done() for f in futures):
                _drain(q, progress, timeout_s=0.2)
            _drain(q, progress, timeout_s=0.0)
            for f in futures:
                seed, policy, kpis = f.result()
                results[seed][policy] = kpis
    out = {}
    for seed, per_policy in results.items():
        add_savings(per_policy)
        doc = {"scenario": _scenario_info(req, seed), "policies": per_policy}
        folder = _seed_dir(req, seed)
        folder.mkdir(parents=True, exist_ok=True)
        write_kpis(folder, doc)
        out[seed] = doc
    return out


def _drain(q, progress, timeout_s: float) -> None:
    try:
        item = q.get(timeout=timeout_s) if timeout_s > 0 else q.get_nowait()
    except queue_mod.Empty:
        return
    while True:
        if progress is not None:
            progress(*item)
        try:
            item = q.get_nowait()
        except queue_mod.Empty:
            return

"""Decision quality: gridctl's rolling controller against perfect foresight and stand-alone.

For the Misono reference block (summer, winter and spring weeks) and generated blocks of
other shapes (chains, trees, stars, rings; homes without PV or battery; demand charges on and
off; outages with and without warning), runs the three policies of ``gridctl simulate`` on
the same profiles and prints, per case:

* total cost of each policy (energy bills less the stored-energy credit, plus demand charges
  and lost load) [JPY] and the share of foresight's savings over stand-alone that rolling
  captures [%];
* peak import (block, and members with a demand charge) [kW], battery throughput [kWh], P2P
  sent and resold [kWh];
* every rule violation of rolling and foresight [kWh] (any above zero is a defect).

One JSON object per case, then a table.  Asserts nothing; run it on an idle machine::

    python bench/control.py            # every case (about 30 minutes on 2 cores)
    python bench/control.py --quick    # two short cases
    python bench/control.py --only chain12
    python bench/control.py --ablation # where rolling loses to foresight: one factor at a time

The ablation runs the Misono summer week with the rolling controller changed in one way each:
re-planning hourly instead of every step, planning from the true profiles (no forecast
error), without the real-time correction, and with no terminal value on stored energy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridctl.config import load_site  # noqa: E402
from sim.kpis import policy_kpis  # noqa: E402
from sim.outages import parse_outage  # noqa: E402
from sim.profiles import synthetic_profiles  # noqa: E402
from sim.runner import Scenario, run_policy  # noqa: E402
from sim.runner.forecasting import HISTORY_DAYS  # noqa: E402
from sim.sitegen import SHAPES, write_site  # noqa: E402

JST = dt.timezone(dt.timedelta(hours=9))
POLICIES = ("rolling", "foresight", "standalone")


@dataclass(frozen=True)
class Case:
    """One benchmark case: a site (file or generated shape), a span and outages."""

    name: str
    site: str                       # "misono" or a sitegen.SHAPES key
    start: str                      # JST date
    days: float
    outage: str | None = None       # START/DURATION (site-local), e.g. 2026-08-05T18:00/12h
    warning_h: float = 0.0


CASES = (
    Case("misono-summer", "misono", "2026-08-03", 7),
    Case("misono-winter", "misono", "2026-01-12", 7),
    Case("misono-spring", "misono", "2026-04-20", 7),
    Case("chain12", "chain12", "2026-08-03", 3),
    Case("chain12-nodemand", "chain12-nodemand", "2026-08-03", 3),
    Case("tree9", "tree9", "2026-08-03", 3),
    Case("star6-homes-winter", "star6-homes-only", "2026-01-12", 3),
    Case("ring4-nobattery", "ring4-nobattery", "2026-04-20", 3),
    Case("misono-outage-warned", "misono", "2026-08-03", 3, "2026-08-04T18:00/12h", 24.0),
    Case("tree9-outage-unwarned", "tree9", "2026-08-03", 3, "2026-08-04T18:00/6h", 0.0),
)
QUICK = (Case("misono-summer-2d", "misono", "2026-08-03", 2),
         Case("chain12-1d", "chain12", "2026-08-03", 1))


#: (name, re-plan period [s] or None for the site's, patches) of the ablation.
ABLATION = (
    ("rolling (as shipped)", None, ()),
    ("rolling, hourly re-plans", 3600.0, ()),
    ("rolling, true forecasts", None, ("truth",)),
    ("rolling, no real-time correction", None, ("no_correction",)),
    ("rolling, no terminal value", None, ("no_terminal",)),
)


def _patch(names: tuple[str, ...]) -> None:
    """Change the rolling controller in this worker process (ablation only)."""
    import gridctl.controller.decide as decide
    import gridctl.controller.problem as problem
    import sim.runner.policies as policies
    from sim.runner.forecasting import truth_forecaster

    if "truth" in names:
        policies.rolling_forecaster = truth_forecaster
    if "no_correction" in names:
        decide.correct_targets = lambda idx, targets, snapshot, bounds=None: (targets, ())
    if "no_terminal" in names:
        problem.stored_energy_value_jpy_per_kwh = lambda *_args: 0.0


def run_variant(variant: tuple) -> dict:
    """One ablation variant of the rolling controller on the Misono summer week."""
    name, replan_s, patches = variant
    _patch(patches)
    case = CASES[0]
    site = load_site(ROOT / "configs" / "misono.yaml")
    start = dt.datetime.fromisoformat(case.start).replace(tzinfo=JST).astimezone(dt.timezone.utc)
    end = start + dt.timedelta(days=case.days)
    profiles = synthetic_profiles(site, start - dt.timedelta(days=HISTORY_DAYS), end, 900.0, seed=1)
    scenario = Scenario(site, profiles, start, end, replan_s=replan_s)
    figures = _figures(policy_kpis(site, run_policy(scenario, "rolling"), ()), site)
    return {"variant": name, **figures}


def _site_path(case: Case, folder: Path) -> Path:
    if case.site == "misono":
        return ROOT / "configs" / "misono.yaml"
    return write_site(SHAPES[case.site], folder)


def _figures(kpis: dict, site) -> dict:
    block = kpis["block"]
    demand = {n.id: kpis["members"][n.id]["peak_import_kw"] for n in site.nodes
              if n.contract.demand_charge_jpy_per_kw_month > 0}
    return {"total_cost_jpy": float(Decimal(block["total_cost_jpy"])),
            "demand_charge_jpy": block["demand_charge_jpy"], "lost_load_jpy": block["lost_load_jpy"],
            "peak_import_kw": block["peak_import_kw"], "demand_member_peaks_kw": demand,
            "battery_throughput_kwh": block["battery_throughput_kwh"],
            "p2p_sent_kwh": block["p2p_sent_kwh"], "p2p_resold_kwh": block["p2p_resold_kwh"],
            "p2p_delivered_kwh": block["p2p_delivered_kwh"],
            "self_sufficiency_pct": block["self_sufficiency_pct"],
            "rule_violations": block["rule_violations"],
            "replans": kpis["solver"]["replans"], "replan_median_s": kpis["solver"]["replan_median_s"],
            "wall_s": kpis["wall_s"]}


def run_case(case: Case) -> dict:
    """All three policies of one case; their figures and the comparison."""
    with tempfile.TemporaryDirectory() as tmp:
        site = load_site(_site_path(case, Path(tmp)))
    start = dt.datetime.fromisoformat(case.start).replace(tzinfo=JST).astimezone(dt.timezone.utc)
    end = start + dt.timedelta(days=case.days)
    profiles = synthetic_profiles(site, start - dt.timedelta(days=HISTORY_DAYS), end, 900.0, seed=1)
    outages = ()
    if case.outage:
        outages = (parse_outage(case.outage, site.site.timezone, dt.timedelta(hours=case.warning_h)),)
    scenario = Scenario(site, profiles, start, end, outages=outages)
    out = {"case": case.name, "nodes": len(site.nodes), "links": len(site.links), "days": case.days,
           "outage": case.outage, "warning_h": case.warning_h}
    for policy in POLICIES:
        began = time.perf_counter()
        result = run_policy(scenario, policy)
        out[policy] = _figures(policy_kpis(site, result, outages), site)
        out[policy]["wall_s"] = round(time.perf_counter() - began, 1)
    return _compare(out, site)


def _compare(out: dict, site) -> dict:
    roll, fore, alone = (out[p] for p in POLICIES)
    gain = alone["total_cost_jpy"] - fore["total_cost_jpy"]
    out["capture_pct"] = (round(100 * (alone["total_cost_jpy"] - roll["total_cost_jpy"]) / gain, 1)
                          if gain > 1.0 else None)
    out["rolling_vs_standalone_jpy"] = round(alone["total_cost_jpy"] - roll["total_cost_jpy"], 1)
    peaks = [(roll["demand_member_peaks_kw"][m], alone["demand_member_peaks_kw"][m])
             for m in roll["demand_member_peaks_kw"]]
    out["demand_peak_ratio"] = round(max((r / a for r, a in peaks if a > 0), default=0.0), 3) or None
    out["throughput_ratio"] = (round(roll["battery_throughput_kwh"] / fore["battery_throughput_kwh"], 3)
                               if fore["battery_throughput_kwh"] > 0 else None)
    out["violations_kwh"] = round(sum(roll["rule_violations"].values())
                                  + sum(fore["rule_violations"].values()), 6)
    return out


def _table(rows: list[dict]) -> str:
    head = (f"{'case':24} {'roll':>10} {'fore':>10} {'alone':>10} {'capt%':>6} {'peak r/a':>8} "
            f"{'thru r/f':>8} {'p2p sent':>9} {'resold':>7} {'violations':>10}")
    lines = [head, "-" * len(head)]
    for r in rows:
        def cost(p: str) -> str:
            return f"{r[p]['total_cost_jpy']:10,.0f}"
        ratio = "-" if r["demand_peak_ratio"] is None else f"{r['demand_peak_ratio']:.3f}"
        thru = "-" if r["throughput_ratio"] is None else f"{r['throughput_ratio']:.2f}"
        capt = "-" if r["capture_pct"] is None else f"{r['capture_pct']:.1f}"
        lines.append(f"{r['case']:24} {cost('rolling')} {cost('foresight')} {cost('standalone')} "
                     f"{capt:>6} {ratio:>8} {thru:>8} {r['rolling']['p2p_sent_kwh']:9.1f} "
                     f"{r['rolling']['p2p_resold_kwh']:7.2f} {r['violations_kwh']:10.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two short cases")
    parser.add_argument("--only", help="run only the cases whose name contains this")
    parser.add_argument("--workers", type=int, default=2, help="processes")
    parser.add_argument("--ablation", action="store_true", help="rolling changed one way at a time")
    args = parser.parse_args(argv)
    if args.ablation:  # a fresh process per variant: the patches must not leak
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=max(1, args.workers), mp_context=spawn,
                                 max_tasks_per_child=1) as pool:
            for row in pool.map(run_variant, ABLATION):
                print(json.dumps(row), flush=True)
        return 0
    cases = [c for c in (QUICK if args.quick else CASES) if args.only in (None,) or args.only in c.name]
    rows = []
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        for row in pool.map(run_case, cases):
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

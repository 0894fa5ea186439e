"""One sweep case: its identity (a hash), how it runs, and its typed result.

A case's hash is the SHA-256 of the canonical JSON of what decides its outcome: the case
parameters (and the content of the tariff set it names), the simulation window, the hash of
the validated base site and the code version. A finished case is stored under that hash, so
an interrupted sweep resumes and a changed site, window or code never reuses old results.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gridctl.config import SiteConfig
from sim.kpis import policy_kpis
from sim.outages import OutageWindow, parse_duration, parse_outage
from sim.runner.loop import run_policy
from sim.runner.scenario import SimulationRequest, add_savings, build_scenario
from sim.sweep.apply import LoadedTariffSet, apply_case
from sim.sweep.metrics import CaseMetrics, metrics_from_kpis
from sim.sweep.spec import CaseParams

__all__ = ["CaseResult", "CaseTask", "PolicyOutcome", "SweepWindow", "canonical_json",
           "case_hash", "run_case", "site_sha256"]

DEFAULT_SEED = 1


@dataclass(frozen=True)
class SweepWindow:
    """The simulated span of every case.

    Parameters
    ----------
    start_utc : datetime
        First simulated instant (tz-aware UTC, on a JST half hour).
    days : float
        Simulated span [days].
    step_s : float
        Plant and control step [s].
    replan_s : float or None
        Re-plan period [s]; None: the site's.
    baselines : tuple of str
        Baseline policies run besides ``rolling``.
    sky : str
    initial_soc_pct : float
        Battery state of charge at the start [%].
    """

    start_utc: dt.datetime
    days: float
    step_s: float
    replan_s: float | None
    baselines: tuple[str, ...]
    sky: str
    initial_soc_pct: float

    @property
    def end_utc(self) -> dt.datetime:
        return self.start_utc + dt.timedelta(days=self.days)

    def as_json(self) -> dict[str, Any]:
        return {"start_utc": self.start_utc.isoformat(), "days": self.days, "step_s": self.step_s,
                "replan_s": self.replan_s, "baselines": list(self.baselines), "sky": self.sky,
                "initial_soc_pct": self.initial_soc_pct}


@dataclass(frozen=True)
class CaseTask:
    """Everything a worker needs to run one case (picklable; no file is read)."""

    index: int
    case_hash: str
    base_site: SiteConfig
    params: CaseParams
    tariff_set: LoadedTariffSet | None
    window: SweepWindow


@dataclass(frozen=True)
class PolicyOutcome:
    """One policy's run of a case: its metrics, re-plan count and wall time [s]."""

    policy: str
    metrics: CaseMetrics
    replans: int
    wall_s: float


@dataclass(frozen=True)
class CaseResult:
    """A finished case: its hash, parameters and one outcome per policy (rolling first)."""

    case_hash: str
    params: CaseParams
    policies: tuple[PolicyOutcome, ...]

    def to_json(self) -> dict[str, Any]:
        return {"case_hash": self.case_hash,
                "params": self.params.model_dump(mode="json", exclude_none=True),
                "policies": [{"policy": p.policy, "metrics": asdict(p.metrics),
                              "replans": p.replans, "wall_s": p.wall_s} for p in self.policies]}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> CaseResult:
        """Rebuild a stored case; raises KeyError, TypeError or ValueError if malformed."""
        return cls(case_hash=str(doc["case_hash"]), params=CaseParams.model_validate(doc["params"]),
                   policies=tuple(PolicyOutcome(policy=str(p["policy"]), metrics=CaseMetrics(**p["metrics"]),
                                                replans=int(p["replans"]), wall_s=float(p["wall_s"]))
                                  for p in doc["policies"]))


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def site_sha256(site: SiteConfig) -> str:
    """Hash of the validated site (device profiles included, so a profile change counts)."""
    return hashlib.sha256(canonical_json(site.model_dump(mode="json")).encode()).hexdigest()


def case_hash(params: CaseParams, tariff_set: LoadedTariffSet | None, window: SweepWindow,
              base_site_sha256: str, code_version: str) -> str:
    """The case's key (hex SHA-256)."""
    tariffs = None
    if tariff_set is not None:
        tariffs = {"tariffs": None if tariff_set.tariffs is None
                   else [t.model_dump(mode="json") for t in tariff_set.tariffs],
                   "assign": tariff_set.assign.model_dump(mode="json", exclude={"file"})}
    doc = {"params": params.model_dump(mode="json", exclude_none=True), "tariff_set": tariffs,
           "window": window.as_json(), "site_sha256": base_site_sha256, "code": code_version}
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()


def case_outages(site: SiteConfig, params: CaseParams) -> tuple[OutageWindow, ...]:
    """The case's outage (none unless ``outage_start`` is set)."""
    if params.outage_start is None or params.outage_length is None:
        return ()
    warning = parse_duration(params.outage_warning) if params.outage_warning else dt.timedelta(0)
    return (parse_outage(f"{params.outage_start}/{params.outage_length}", site.site.timezone, warning),)


def run_case(task: CaseTask) -> CaseResult:
    """Apply the case to the base site and simulate every policy (in this process)."""
    site = apply_case(task.base_site, task.params, task.tariff_set)
    w = task.window
    seed = task.params.seed if task.params.seed is not None else DEFAULT_SEED
    outages = case_outages(site, task.params)
    req = SimulationRequest(config_path=Path(site.site.id), start_utc=w.start_utc, days=w.days,
                            out_dir=Path("."), step_s=w.step_s, replan_s=w.replan_s, seeds=(seed,),
                            outages=outages, baselines=w.baselines, sky=w.sky,
                            initial_soc_pct=w.initial_soc_pct)
    scenario = build_scenario(site, req, seed)
    per_policy: dict[str, dict] = {}
    for policy in ("rolling",) + w.baselines:
        per_policy[policy] = policy_kpis(site, run_policy(scenario, policy), outages)  # type: ignore[arg-type]
    add_savings(per_policy)
    return CaseResult(task.case_hash, task.params, tuple(
        PolicyOutcome(policy, metrics_from_kpis(k), int(k.get("solver", {}).get("replans", 0)),
                      float(k["wall_s"])) for policy, k in per_policy.items()))

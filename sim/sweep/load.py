"""Load a sweep file into runnable cases, or fail with one ``FILE:LINE: key: message`` issue.

Every case is applied to the base site here, at load, so a bad combination (an unknown node,
a tariff without a version in the window, a site that no longer passes its cross-checks) is
rejected before any simulation starts.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridctl import __version__
from gridctl.config import ConfigError, SiteConfig, load_site
from gridctl.config.loader import issue_at, load_model
from gridctl.tariffs import JST
from sim.outages import parse_duration, parse_start
from sim.sweep.apply import CaseError, LoadedTariffSet, apply_case, check_tariff_cover
from sim.sweep.case import CaseTask, SweepWindow, case_hash, site_sha256
from sim.sweep.spec import PARAM_NAMES, CaseParams, SweepFile, TariffFile

__all__ = ["Sweep", "code_version", "load_sweep"]

_SOURCE_PACKAGES = ("gridctl", "optimizer", "sim")


@dataclass(frozen=True)
class Sweep:
    """A loaded sweep: the cases to run (in file order, duplicates dropped) and the metrics."""

    path: Path
    site: SiteConfig
    window: SweepWindow
    tasks: tuple[CaseTask, ...]
    metrics: tuple[str, ...]
    code_version: str


def code_version() -> str:
    """``<version>+<hash of the simulator's source>``: any code change gives new case hashes."""
    root = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for package in _SOURCE_PACKAGES:
        for file in sorted((root / package).rglob("*.py")):
            digest.update(file.relative_to(root).as_posix().encode() + b"\0" + file.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:16]}"


def _fail(path: Path, tree: Any, loc: tuple[str | int, ...], message: str) -> ConfigError:
    return ConfigError([issue_at(path, tree, loc, message)])


def _window(path: Path, tree: Any, spec: SweepFile, site: SiteConfig) -> SweepWindow:
    w = spec.window
    start_utc = parse_start(w.start, site.site.timezone)
    step_s = parse_duration(w.step).total_seconds()
    replan_s = parse_duration(w.replan).total_seconds() if w.replan else None
    if step_s < 60 or 1800 % step_s:
        raise _fail(path, tree, ("window", "step"), "must divide 30 minutes (e.g. 5min, 15min, 30min)")
    if replan_s is not None and replan_s % step_s:
        raise _fail(path, tree, ("window", "replan"), f"must be a whole number of steps ({w.step})")
    local = start_utc.astimezone(JST)
    if local.minute % 30 or local.second or local.microsecond:
        raise _fail(path, tree, ("window", "start"), "must lie on a JST half hour")
    return SweepWindow(start_utc=start_utc, days=w.days, step_s=step_s, replan_s=replan_s,
                       baselines=tuple(dict.fromkeys(w.baselines)), sky=w.sky,
                       initial_soc_pct=w.initial_soc_pct)


def _tariff_sets(path: Path, spec: SweepFile) -> dict[str, LoadedTariffSet]:
    sets = {}
    for name, entry in spec.tariff_sets.items():
        tariffs = None
        if entry.file is not None:
            tariffs = tuple(load_model(path.parent / entry.file, TariffFile)[0].tariffs)
        sets[name] = LoadedTariffSet(name=name, tariffs=tariffs, assign=entry)
    return sets


def _combinations(path: Path, tree: Any, spec: SweepFile) -> list[tuple[tuple[str | int, ...], CaseParams]]:
    """(where in the file, params) of every case: grid product x explicit cases."""
    varied = {n: getattr(spec.grid, n) for n in PARAM_NAMES if getattr(spec.grid, n) is not None}
    points = [dict(zip(varied, values)) for values in itertools.product(*varied.values())]
    explicit: list[tuple[tuple[str | int, ...], dict]] = [(("grid",), {})]
    if spec.cases:
        explicit = [(("cases", i), c.model_dump(exclude_none=True)) for i, c in enumerate(spec.cases)]
    out = []
    for loc, case in explicit:
        both = sorted(set(case) & set(varied))
        if both:
            raise _fail(path, tree, loc + (both[0],), "also varied in grid; vary it in one place")
        for point in points:
            try:
                out.append((loc, CaseParams.model_validate({**point, **case})))
            except ValueError as exc:
                message = str(exc).splitlines()[-1].strip().removeprefix("Value error, ")
                raise _fail(path, tree, loc, message.split(" [type=")[0]) from None
    return out


def load_sweep(path: str | Path) -> Sweep:
    """Load and check a sweep file; raise :class:`ConfigError` (file:line) on any problem."""
    path = Path(path)
    spec, tree = load_model(path, SweepFile)
    site = load_site(path.parent / spec.base_site)
    window = _window(path, tree, spec, site)
    sets = _tariff_sets(path, spec)
    code, base_hash = code_version(), site_sha256(site)
    tasks: list[CaseTask] = []
    seen: set[str] = set()
    for loc, params in _combinations(path, tree, spec):
        tariff_set = None
        if params.tariff_set is not None:
            tariff_set = sets.get(params.tariff_set)
            if tariff_set is None:
                raise _fail(path, tree, loc + ("tariff_set",), f"unknown tariff set '{params.tariff_set}'")
        try:
            check_tariff_cover(apply_case(site, params, tariff_set), window.start_utc, window.end_utc)
        except CaseError as exc:
            raise _fail(path, tree, loc, str(exc)) from None
        key = case_hash(params, tariff_set, window, base_hash, code)
        if key not in seen:
            seen.add(key)
            tasks.append(CaseTask(len(tasks), key, site, params, tariff_set, window))
    return Sweep(path=path, site=site, window=window, tasks=tuple(tasks),
                 metrics=tuple(spec.metrics), code_version=code)

"""``gridctl simulate``: run a block for days to a year against baselines and outages.

Writes ``kpis.json``, ``timeseries.csv``, ``link_flows.csv``, ``settlement.csv``, the settlement
ledger and PNG plots into ``--out``; prints a progress bar with ETA and a KPI table. Bad input
(unknown node or gaps in the CSV, dates outside it, an unparsable outage) prints one line and
exits 2.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.markup import escape
from rich.table import Table

from gridctl.config import ConfigError, load_site

EXIT_USAGE = 2
_ROWS = (
    ("total_cost_jpy", "total cost [JPY]"),
    ("energy_cost_adjusted_jpy", "  energy, stored-energy adjusted [JPY]"),
    ("demand_charge_jpy", "  demand charge raised [JPY]"),
    ("lost_load_jpy", "  lost load [JPY]"),
    ("savings_vs_standalone_jpy", "savings vs stand-alone [JPY]"),
    ("self_sufficiency_pct", "self-sufficiency [%]"),
    ("self_consumption_pct", "self-consumption [%]"),
    ("p2p_delivered_kwh", "P2P delivered [kWh]"),
    ("p2p_from_surplus_kwh", "P2P sent from own surplus [kWh]"),
    ("grid_import_kwh", "grid import [kWh]"),
    ("grid_export_kwh", "grid export [kWh]"),
    ("peak_import_kw", "peak 30-min import [kW]"),
    ("curtailment_kwh", "curtailment [kWh]"),
    ("battery_throughput_kwh", "battery throughput [kWh]"),
    ("equivalent_cycles", "battery equivalent cycles [-]"),
    ("unserved_critical_kwh", "unserved critical [kWh]"),
)
#: Rule violations, each shown in red when above zero.
_RULE_ROWS = (
    ("shed_while_connected_kwh", "rule: shed while grid-connected [kWh]"),
    ("resold_kwh", "rule: grid power resold over links [kWh]"),
    ("forbidden_export_kwh", "rule: battery export at a FIT meter [kWh]"),
    ("export_while_shedding_kwh", "rule: export while shedding [kWh]"),
)


class _UsageError(ValueError):
    """Bad command-line input; one line, exit 2."""


def _seeds(seed: int, seeds: str | None) -> tuple[int, ...]:
    if seeds is None:
        return (seed,)
    match = re.fullmatch(r"\s*(\d+)\s*(?:\.\.\s*(\d+)\s*)?", seeds)
    if not match:
        raise _UsageError(f"--seeds '{seeds}': expected N or A..B (e.g. 1..4)")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) else first
    if last < first or last - first > 999:
        raise _UsageError(f"--seeds '{seeds}': need A <= B and at most 1000 seeds")
    return tuple(range(first, last + 1))


def _baselines(text: str) -> tuple[str, ...]:
    if text == "all":
        return ("foresight", "standalone")
    if text == "none":
        return ()
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [n for n in names if n not in ("foresight", "standalone")]
    if bad or not names:
        raise _UsageError(f"--baselines '{text}': use all, none, or a list of foresight,standalone")
    return names


def _request(config: Path, start: str, days: float, out: Path, step: str, replan: str, seed: int,
             seeds: str | None, profiles: Path | None, outage: list[str], outage_warning: str | None,
             baselines: str, sky: str, initial_soc: float):
    from sim.outages import SpecError, parse_duration, parse_outage, parse_start
    from sim.runner.scenario import SimulationRequest

    try:
        site = load_site(config)
    except ConfigError as exc:
        raise _UsageError(str(exc.issues[0]) if exc.issues else str(exc)) from None
    try:
        start_utc = parse_start(start, site.site.timezone, what="--start")
        step_s = parse_duration(step, "--step").total_seconds()
        replan_s = (None if replan is None
                    else parse_duration(replan, "--replan").total_seconds())
        warning = parse_duration(outage_warning, "--outage-warning") if outage_warning else dt.timedelta(0)
        windows = tuple(parse_outage(spec, site.site.timezone, warning) for spec in outage)
    except SpecError as exc:
        raise _UsageError(str(exc)) from None
    if not 0 < days <= 366:
        raise _UsageError(f"--days {days:g}: must be in (0, 366]")
    if 1800 % step_s or step_s < 60:
        raise _UsageError(f"--step {step}: must divide 30 minutes (e.g. 5min, 15min, 30min)")
    if replan_s is not None and replan_s % step_s:
        raise _UsageError(f"--replan {replan}: must be a whole number of steps ({step})")
    local = start_utc.astimezone(dt.timezone(dt.timedelta(hours=9)))
    if local.minute % 30 or local.second or local.microsecond:
        raise _UsageError(f"--start {start}: must lie on a JST half hour")
    if sky not in ("stochastic", "clear"):
        raise _UsageError(f"--sky {sky}: use stochastic or clear")
    _check_tariffs(site, start_utc, start_utc + dt.timedelta(days=days))
    return site, SimulationRequest(
        config_path=config, start_utc=start_utc, days=days, out_dir=out, step_s=step_s,
        replan_s=replan_s, seeds=_seeds(seed, seeds), profiles_csv=profiles, outages=windows,
        baselines=_baselines(baselines), sky=sky, initial_soc_pct=initial_soc)


def _check_tariffs(site, start_utc: dt.datetime, end_utc: dt.datetime) -> None:
    """Every member's tariffs must have a version for the whole span (checked at both ends)."""
    from gridctl.tariffs import TariffLookupError, tariff_version

    zone = ZoneInfo(site.site.timezone)
    days = {start_utc.astimezone(zone).date(), (end_utc - dt.timedelta(seconds=1)).astimezone(zone).date()}
    for node in site.nodes:
        for tariff_id in filter(None, (node.contract.tariff, node.contract.buyback_tariff)):
            for day in sorted(days):
                try:
                    tariff_version(site, tariff_id, day)
                except TariffLookupError as exc:
                    raise _UsageError(f"{node.id}: {exc}") from None


def _check_profiles(site, req) -> None:
    """Read the measured CSV once here so a bad file fails before any work starts."""
    if req.profiles_csv is None:
        return
    from sim.profiles import ProfileError, read_measured_csv

    try:
        read_measured_csv(req.profiles_csv, tuple(n.id for n in site.nodes), req.start_utc,
                          req.end_utc, req.step_s)
    except ProfileError as exc:
        raise _UsageError(str(exc)) from None


def _table(doc: dict) -> Table:
    policies = doc["policies"]
    table = Table(title=f"Block KPIs, seed {doc['scenario']['seed']} "
                        f"({doc['scenario']['days']:g} days from {doc['scenario']['start_utc']})")
    table.add_column("KPI")
    for name in policies:
        table.add_column(name, justify="right")
    for key, label in _ROWS:
        cells = []
        for kpis in policies.values():
            value = kpis["block"].get(key)
            cells.append("-" if value is None else (f"{float(value):,.1f}" if not isinstance(value, str)
                                                    else f"{float(value):,.0f}"))
        table.add_row(escape(label), *cells)
    for key, label in _RULE_ROWS:
        cells = []
        for kpis in policies.values():
            value = kpis["block"].get("rule_violations", {}).get(key, 0.0)
            cells.append(f"[bold red]{value:,.2f}[/]" if value > 0 else f"{value:,.1f}")
        table.add_row(escape(label), *cells)
    for i, o in enumerate(policies.get("rolling", {}).get("outages", [])):
        table.add_row(escape(f"outage {i + 1}: full critical service [h]"),
                      *[f"{k['outages'][i]['full_critical_service_h']:.2f} / {o['duration_h']:g}"
                        for k in policies.values()])
        table.add_row(escape(f"outage {i + 1}: min stored [kWh]"),
                      *[f"{k['outages'][i]['min_stored_kwh']:.1f}" for k in policies.values()])
    cells = []
    for kpis in policies.values():
        solver = kpis.get("solver", {})
        fallback = solver.get("statuses", {}).get("fallback", 0)
        cells.append(f"{solver['replans']} ({fallback}) / {solver['replan_median_s']:.3f}"
                     if solver.get("replans") else "-")
    table.add_row(escape("re-plans (of which fallback) / median [s]"), *cells)
    table.add_row(escape("wall time [s]"), *[f"{k['wall_s']:.1f}" for k in policies.values()])
    return table


def simulate(
    config: Path = typer.Argument(..., help="site file (YAML)"),
    start: str = typer.Option(..., "--start", help="first day or instant, site-local unless an offset is given"),
    days: float = typer.Option(..., "--days", help="simulated span [days]"),
    out: Path = typer.Option(..., "--out", help="output folder"),
    step: str = typer.Option("15min", "--step", help="plant and control step"),
    replan: str | None = typer.Option(None, "--replan", help="re-plan period of the rolling "
                                      "controller (default: the site's control.replan_period_s, "
                                      "rounded up to whole steps, as the daemon re-plans)"),
    seed: int = typer.Option(1, "--seed", help="profile seed"),
    seeds: str | None = typer.Option(None, "--seeds", help="several scenarios, e.g. 1..4 (parallel)"),
    profiles: Path | None = typer.Option(None, "--profiles", help="measured CSV: timestamp,node,pv_kw,load_kw"),
    outage: list[str] = typer.Option([], "--outage", help="START/DURATION, e.g. 2026-08-10T14:00/72h; repeatable"),
    outage_warning: str | None = typer.Option(None, "--outage-warning", help="lead time the controller is told, e.g. 24h"),
    baselines: str = typer.Option("all", "--baselines", help="all | none | foresight,standalone"),
    sky: str = typer.Option("stochastic", "--sky", help="stochastic clouds or a clear sky"),
    initial_soc: float = typer.Option(50.0, "--initial-soc", min=0, max=100, help="battery SoC at start [%]"),
    workers: int = typer.Option(min(2, os.cpu_count() or 1), "--workers", min=1, help="processes"),
) -> None:
    """Simulate the block with gridctl's controller against baselines; write KPIs, series, ledger, plots."""
    from sim.runner.scenario import run_request

    console = Console(stderr=True)
    try:
        site, req = _request(config, start, days, out, step, replan, seed, seeds, profiles, outage,
                             outage_warning, baselines, sky, initial_soc)
        _check_profiles(site, req)
        out.mkdir(parents=True, exist_ok=True)
    except _UsageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except OSError as exc:
        typer.echo(f"error: {out}: cannot create: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        tasks = {}

        def progress(s: int, policy: str, k: int, n: int) -> None:
            key = (s, policy)
            if key not in tasks:
                tasks[key] = bar.add_task(f"seed {s} {policy}", total=n)
            bar.update(tasks[key], completed=k)

        try:
            results = run_request(req, workers=workers, progress=progress)
        except (ValueError, LookupError, OSError) as exc:  # one line, never a traceback
            typer.echo(f"error: {str(exc).splitlines()[0]}", err=True)
            raise typer.Exit(1) from None
    out_console = Console()
    for doc in results.values():
        out_console.print(_table(doc))
        if doc["scenario"].get("shedding") == "not actuated":
            typer.echo("shedding not actuated: no node has load.switches, so a shed tier is taken "
                       "as shed at once and in full")
    typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command to the root app."""
    app.command("simulate")(simulate)

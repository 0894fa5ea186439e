"""``gridctl sweep``: run many simulations of one site with parameters varied, in parallel.

Writes ``cases/<hash>.json`` per finished case (a re-run skips them), ``results.csv`` (and
``results.parquet`` with pyarrow) and ``plots/*.png`` into ``--out``. A bad sweep file prints
one ``FILE:LINE: key: message`` line and exits 2; a failing case is listed and the others go
on (exit 1 at the end).
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gridctl.config import ConfigError

EXIT_USAGE = 2


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _tls(ca: Path | None, cert: Path | None, key: Path | None):  # noqa: ANN202 - DaskTls | None
    from sim.sweep.executors import DaskTls

    given = [p for p in (ca, cert, key) if p is not None]
    if not given:
        return None
    if len(given) != 3:
        raise _fail("--tls-ca-file, --tls-cert and --tls-key go together", EXIT_USAGE)
    missing = [str(p) for p in given if not p.is_file()]
    if missing:
        raise _fail(f"{missing[0]}: file not found", EXIT_USAGE)
    return DaskTls(ca_file=ca, cert_file=cert, key_file=key)  # type: ignore[arg-type]


def sweep(
    sweep_file: Path = typer.Argument(..., help="sweep file (YAML)"),
    out: Path | None = typer.Option(None, "--out", help="output folder (default var/sweeps/<file name>)"),
    scheduler: str = typer.Option("process", "--scheduler",
                                  help="serial | process:N | local:N (Dask) | tcp://host:8786 | tls://host:8786"),
    workers: int = typer.Option(min(2, os.cpu_count() or 1), "--workers", min=1,
                                help="N when --scheduler gives none"),
    tls_ca_file: Path | None = typer.Option(None, "--tls-ca-file", help="CA of a tls:// scheduler (PEM)"),
    tls_cert: Path | None = typer.Option(None, "--tls-cert", help="client certificate (PEM)"),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="client private key (PEM)"),
) -> None:
    """Run the cases of a sweep file in parallel; write a tidy table and comparison plots."""
    from sim.sweep.executors import open_executor, parse_scheduler
    from sim.sweep.load import load_sweep
    from sim.sweep.run import run_sweep
    from sim.sweep.table import result_table, write_plots, write_table

    try:
        spec = parse_scheduler(scheduler, workers)
        loaded = load_sweep(sweep_file)
    except ConfigError as exc:
        raise _fail(str(exc.issues[0]) if exc.issues else str(exc), EXIT_USAGE) from None
    except ValueError as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    tls = _tls(tls_ca_file, tls_cert, tls_key)
    if tls is not None and not (spec.address or "").startswith("tls://"):
        raise _fail("--tls-* options need a --scheduler tls://host:port", EXIT_USAGE)
    out = out if out is not None else Path("var/sweeps") / sweep_file.stem
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(f"{out}: cannot create: {exc.strerror}", 1) from None
    console = Console(stderr=True)
    columns = (TextColumn("cases"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with open_executor(spec, tls) as executor, Progress(*columns, console=console) as bar:
            task = bar.add_task("cases", total=len(loaded.tasks))
            outcome = run_sweep(loaded, out, executor, spec.in_flight,
                                lambda done, total: bar.update(task, completed=done))
    except (ImportError, OSError, TimeoutError) as exc:
        raise _fail(f"scheduler {spec}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                    1) from None
    frame = result_table(outcome.results, loaded.metrics)
    paths = write_table(frame, out)
    plots = write_plots(frame, loaded.metrics, out)
    typer.echo(f"{len(loaded.tasks)} cases: {outcome.skipped} already done (skipped), "
               f"{outcome.ran} run, {len(outcome.failures)} failed; "
               f"wall time {outcome.wall_s:.1f} s on {spec}")
    for failure in outcome.failures:
        typer.echo(f"case {failure.index} ({failure.case_hash[:12]}) failed: {failure.message}", err=True)
    typer.echo(f"wrote {', '.join(str(p) for p in paths)} ({len(frame)} rows) and {len(plots)} plots")
    if outcome.failures:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``sweep`` command to the root app."""
    app.command("sweep")(sweep)

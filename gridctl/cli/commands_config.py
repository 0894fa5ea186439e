"""``gridctl config``: validate site files, print the JSON Schema, write a starting template."""

from __future__ import annotations

from pathlib import Path

import typer

from gridctl.config import ConfigError, SiteConfig, load_site
from gridctl.config.schema import site_json_schema_text
from gridctl.config.template import TEMPLATE_PROTOCOLS, site_template

config_app = typer.Typer(help="Validate, describe and start site configuration files.",
                         no_args_is_help=True)

EXIT_CONFIG = 2


def _summary(path: Path, site: SiteConfig) -> str:
    devices = site.all_devices()
    routers = site.routers()
    kinds = {}
    for _, device in devices:
        kinds[device.kind] = kinds.get(device.kind, 0) + 1
    detail = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    return (f"{path}: ok: site '{site.site.id}', {len(site.nodes)} nodes, {len(devices)} devices "
            f"({detail}), {len(routers)} routers, {len(site.links)} links")


def _warnings(site: SiteConfig) -> list[str]:
    """Valid but suspicious: months missing inside a fuel cost adjustment table."""
    from gridctl.config.tariffs import ImportTariff
    from gridctl.tariffs import fuel_adjustment_gaps

    return [
        f"tariffs[{t.id}@{t.version}].fuel_cost_adjustment_by_month: no value for {', '.join(gaps)} "
        f"(periods there use fuel_cost_adjustment_jpy_per_kwh {t.fuel_cost_adjustment_jpy_per_kwh} "
        "and are flagged fuel_adjustment_default)"
        for t in site.tariffs
        if isinstance(t, ImportTariff) and (gaps := fuel_adjustment_gaps(t))
    ]


@config_app.command("validate")
def validate(files: list[Path] = typer.Argument(..., help="site files to check")) -> None:
    """Check each FILE; print a summary line, or every error as FILE:LINE: key.path: message."""
    failed = False
    for path in files:
        try:
            site = load_site(path)
        except ConfigError as exc:
            failed = True
            for issue in exc.issues:
                typer.echo(str(issue), err=True)
            continue
        typer.echo(_summary(path, site))
        for warning in _warnings(site):
            typer.echo(f"{path}: warning: {warning}", err=True)
    if failed:
        raise typer.Exit(EXIT_CONFIG)


@config_app.command("schema")
def schema(out: Path | None = typer.Option(None, "--out", help="write to this file")) -> None:
    """Print the JSON Schema of a site file (or write it with --out)."""
    text = site_json_schema_text()
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        typer.echo(f"{out}: cannot write: {exc.strerror}", err=True)
        raise typer.Exit(1) from None


@config_app.command("init")
def init(
    nodes: int = typer.Option(3, "--nodes", min=1, max=60, help="number of homes"),
    out: Path = typer.Option(..., "--out", help="file to write"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing file"),
    protocol: str = typer.Option("sunspec", "--protocol",
                                 help="device protocol of the homes: sunspec (Modbus) or echonet (ECHONET Lite)"),
) -> None:
    """Write a commented site template with NODES homes that validates as it is."""
    if protocol not in TEMPLATE_PROTOCOLS:
        typer.echo(f"--protocol: must be one of {', '.join(TEMPLATE_PROTOCOLS)}, not '{protocol}'", err=True)
        raise typer.Exit(EXIT_CONFIG)
    if out.exists() and not force:
        typer.echo(f"{out}: exists; use --force to overwrite", err=True)
        raise typer.Exit(EXIT_CONFIG)
    try:
        out.write_text(site_template(nodes, protocol), encoding="utf-8")
    except OSError as exc:
        typer.echo(f"{out}: cannot write: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{out}: wrote a template with {nodes} {protocol} home(s); edit the lines marked CHANGE")


def register(app: typer.Typer) -> None:
    """Add the ``config`` group to the root app."""
    app.add_typer(config_app, name="config")

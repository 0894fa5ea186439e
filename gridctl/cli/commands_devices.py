"""``gridctl emulate`` and ``gridctl commission scan|probe``: device I/O for installers.

Exit codes: 0 ok, 1 a check failed or a device could not be reached, 2 bad usage or config.
Errors print one line, never a traceback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from drivers.errors import DeviceError
from drivers.profile import ModbusEndpoint
from gridctl.cli.common import load_site_or_exit, quiet_driver_logs
from gridctl.commission.checks import FAIL, describe_error, overall
from gridctl.commission.scan import parse_target, scan
from gridctl.devices import SiteDevices

EXIT_FAILED = 1
EXIT_USAGE = 2

commission_app = typer.Typer(help="Prove devices' wiring before gridctl controls them.", no_args_is_help=True)
_STYLE = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim"}


# -- emulate ------------------------------------------------------------------------------
def emulate(
    config: Path = typer.Argument(..., help="site file whose devices to emulate"),
    time_scale: float = typer.Option(1.0, "--time-scale", min=0.001, max=86400.0,
                                     help="simulated seconds per real second (energy and SoC)"),
) -> None:
    """Serve every device of CONFIG (SunSpec Modbus, relay boards, ECHONET Lite nodes and secure
    OPC UA routers) on its loopback address and port."""
    quiet_driver_logs()
    site = load_site_or_exit(config)
    # Imported here, not at module level: only this command needs the simulator package
    # (the CLI may import sim; the rest of gridctl may not).
    from sim.emulators import site as site_mod
    console = Console()

    def ready(emulated) -> None:  # noqa: ANN001 - sim.emulators.site.EmulatedSite
        table = Table(title=f"emulating site {site.site.id}")
        for column in ("device", "protocol", "endpoint"):
            table.add_column(column)
        for dev_id, emu in emulated.sunspec.items():
            table.add_row(dev_id, "SunSpec Modbus", f"{emu.host}:{emu.port} unit {emu.unit_id}")
        for dev_id, board in emulated.relays.items():
            table.add_row(dev_id, "Modbus relay board", f"{board.host}:{board.port} unit {board.unit_id}")
        for dev_id, obj in emulated.echonet.items():
            host, port = next(where for where, node in emulated.echonet_nodes.items()
                              if node.objects.get(obj.object.eoj) is obj.object)
            table.add_row(dev_id, "ECHONET Lite", f"{host}:{port} object {obj.object.eoj}")
        for dev_id, emu in emulated.routers.items():
            table.add_row(dev_id, "OPC UA", emu.endpoint_url)
        console.print(table)
        count = len(emulated.sunspec) + len(emulated.routers) + len(emulated.relays) + len(emulated.echonet)
        console.print(f"ready: {count} devices; Ctrl-C to stop", highlight=False)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await site_mod.run_site(site, stop, on_ready=ready, time_scale=time_scale)

    try:
        asyncio.run(main())
    except site_mod.EmulationError as exc:
        typer.echo(f"{config}: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except (OSError, RuntimeError) as exc:
        # pymodbus reports a port it cannot bind as RuntimeError("Could not start listen...")
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        typer.echo(f"{config}: cannot serve: {reason} (port in use?)", err=True)
        raise typer.Exit(EXIT_FAILED) from None


# -- commission scan ----------------------------------------------------------------------
@commission_app.command("scan")
def scan_command(
    targets: list[str] = typer.Argument(None, help="HOST[:PORT] of a SunSpec Modbus TCP device (port 502); "
                                                   "with --echonet: ECHONET Lite nodes to ask by unicast (port 3610)"),
    unit: int = typer.Option(1, "--unit", min=0, max=247, help="Modbus unit id"),
    timeout_s: float = typer.Option(2.0, "--timeout", min=0.1, max=60.0, help="per-request timeout [s]"),
    echonet: bool = typer.Option(False, "--echonet", help="find ECHONET Lite nodes instead of a SunSpec map"),
    multicast: bool = typer.Option(False, "--multicast", help="with --echonet: also ask the group 224.0.23.0"),
    as_json: bool = typer.Option(False, "--json", help="with --echonet: print JSON instead of a table"),
) -> None:
    """Find the SunSpec base, list the models (name, length) and the identity; or, with
    --echonet, the ECHONET Lite nodes: instance lists, maker codes and property maps."""
    quiet_driver_logs()
    if echonet:
        _scan_echonet(targets or [], multicast, timeout_s, as_json)
        return
    if not targets or len(targets) != 1:
        typer.echo("scan: give one HOST[:PORT] of a SunSpec device (or --echonet [HOST ...])", err=True)
        raise typer.Exit(EXIT_USAGE)
    try:
        host, port = parse_target(targets[0])
    except ValueError as exc:
        typer.echo(f"scan: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    try:
        result = asyncio.run(scan(ModbusEndpoint(host, port, unit_id=unit, timeout_s=timeout_s)))
    except DeviceError as exc:
        typer.echo(f"{host}:{port} unit {unit}: {describe_error(exc)}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    console = Console()
    ident = result.identity
    console.print(f"{host}:{port} unit {unit}: SunSpec base {result.base_address}", highlight=False)
    if ident is not None:
        console.print(f"manufacturer {ident.manufacturer}, model {ident.model}, serial {ident.serial}, "
                      f"version {ident.version}", highlight=False)
    table = Table()
    for column in ("model", "name", "length", "address"):
        table.add_column(column)
    for m in result.models:
        table.add_row(str(m.model_id), m.name, str(m.length), str(m.address))
    console.print(table)


def _epcs(epcs: tuple[int, ...]) -> str:
    return " ".join(f"{e:02X}" for e in epcs) or "-"


def _scan_echonet(targets: list[str], multicast: bool, timeout_s: float, as_json: bool) -> None:
    from gridctl.commission.echonet_scan import parse_hosts, scan_echonet

    if not targets and not multicast:
        typer.echo("scan --echonet: give node addresses (HOST[:PORT]) or --multicast", err=True)
        raise typer.Exit(EXIT_USAGE)
    try:
        hosts = parse_hosts(targets)
    except ValueError as exc:
        typer.echo(f"scan: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    try:
        rows = asyncio.run(scan_echonet(hosts, multicast=multicast, timeout_s=timeout_s))
    except DeviceError as exc:
        typer.echo(f"scan --echonet: {describe_error(exc)}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in rows], indent=2))
    else:
        table = Table(title="ECHONET Lite objects")
        for column in ("node", "EOJ", "class", "maker", "get (0x9F)", "set (0x9E)", "inf (0x9D)"):
            table.add_column(column, overflow="fold")
        for r in rows:
            maker = "-" if r.maker_code is None else f"0x{r.maker_code:06X}"
            table.add_row(f"{r.host}:{r.port}", r.eoj, r.class_name, maker, _epcs(r.get_epcs),
                          _epcs(r.set_epcs), _epcs(r.inf_epcs))
        Console().print(table)
    asked = {f"{h}:{p}" for h, p in hosts}
    silent = sorted(asked - {f"{r.host}:{r.port}" for r in rows})
    for node in silent:
        typer.echo(f"{node}: no ECHONET Lite answer within {timeout_s:g} s (node off, wrong address, "
                   "or UDP 3610 blocked?)", err=True)
    if silent or not rows:
        raise typer.Exit(EXIT_FAILED)


# -- commission probe ---------------------------------------------------------------------
@commission_app.command("probe")
def probe_command(
    config: Path = typer.Argument(..., help="site file"),
    node: list[str] = typer.Option(None, "--node", help="probe only this node (repeatable)"),
    active: bool = typer.Option(False, "--active", help="run a short battery charge/discharge test, a PV limit "
                                "test, and toggle every switch channel off and on (left as found)"),
    report: Path | None = typer.Option(None, "--report", help="write FILE.md and FILE.json"),
    hold_s: float = typer.Option(1.5, "--hold-s", min=0.1, max=60.0,
                                 help="with --active: how long each test step is held before it is "
                                      "measured [s] (longer for slow devices or contactors)"),
) -> None:
    """Connect to each device, identify it, check values, signs, counters and fail-safe."""
    # Imported here: the probe loads the OPC UA client, which `gridctl run` of a Modbus-only
    # site need not carry (the CLI module is imported by every command).
    from gridctl.commission.probe import ProbeOptions, probe_all
    from gridctl.commission.report import write_reports

    quiet_driver_logs()
    site = load_site_or_exit(config)
    known = [n.id for n in site.nodes]
    unknown = [n for n in (node or []) if n not in known]
    if unknown:
        typer.echo(f"probe: unknown node(s) {unknown}; known: {', '.join(known)}", err=True)
        raise typer.Exit(EXIT_USAGE)
    devices = SiteDevices.from_config(site, node or None)
    if not devices.bindings:
        typer.echo("probe: no devices configured for the chosen node(s)", err=True)
        raise typer.Exit(EXIT_USAGE)
    options = ProbeOptions(active=active, active_hold_s=hold_s)
    async def run() -> list:
        try:
            return await probe_all(list(devices.bindings.values()), options)
        finally:
            if devices.echonet_client is not None:  # the ECHONET drivers' shared socket
                await devices.echonet_client.close()

    results = asyncio.run(run())
    table = Table(title=f"commissioning probe: {site.site.id}")
    for column in ("device", "check", "result", "detail"):
        table.add_column(column, overflow="fold")
    for r in results:
        table.add_row(r.device_id, r.check, f"[{_STYLE.get(r.status, '')}]{r.status}[/]", r.detail)
    console = Console()
    console.print(table)
    verdict = overall(results)
    failed = sum(1 for r in results if r.status == FAIL)
    console.print(f"result: {verdict.upper()} ({len(results)} checks, {failed} failed)", highlight=False)
    if report is not None:
        try:
            md, js = write_reports(report, site.site.id, results, dt.datetime.now(dt.timezone.utc), active)
        except OSError as exc:
            typer.echo(f"{report}: cannot write: {exc.strerror}", err=True)
            raise typer.Exit(EXIT_FAILED) from None
        console.print(f"report: {md} and {js}", highlight=False)
    if verdict == FAIL:
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Add ``emulate`` and the ``commission`` group to the root app."""
    app.command("emulate")(emulate)
    app.add_typer(commission_app, name="commission")

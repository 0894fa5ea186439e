"""``gridctl run`` (the edge daemon) and the operator commands that talk to it.

``status``, ``reserve``, ``island`` and ``reconnect`` reach the running daemon only through its
local Unix socket (``control.socket_path``); file permissions decide who may use it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path

import typer

from gridctl.cli.common import EXIT_CONFIG, EXIT_RUNTIME, fail, load_site_or_exit
from gridctl.config import SiteConfig

DEFAULT_SOCKET = Path("/run/gridctl/gridctl.sock")

_config_arg = typer.Argument(..., help="site file (YAML)", show_default=False)
_socket_opt = typer.Option(None, "--socket", help="daemon socket (default: from --config, "
                           "$GRIDCTL_SOCKET, /run/gridctl/gridctl.sock or ./var/*/gridctl.sock)")
_cfg_opt = typer.Option(None, "--config", "-c", help="site file whose control.socket_path to use")




def _not_session_timeout_notice(record: logging.LogRecord) -> bool:
    """False for asyncua's notice that the server revised the session timeout.

    asyncua asks for 1 h and servers (asyncua's own: 10 min) grant less; the client simply uses
    the granted value, so the warning at every start is noise, not a fault.
    """
    return not str(record.msg).startswith("Requested session timeout")


def _setup_logging(level: str, console=None) -> None:
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(level.upper())
    for chatty in ("asyncua", "pymodbus"):  # their INFO is per request: journald noise
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    client_log = logging.getLogger("asyncua.client.client")
    if _not_session_timeout_notice not in client_log.filters:
        client_log.addFilter(_not_session_timeout_notice)
    if console is not None:
        from rich.logging import RichHandler

        root.addHandler(RichHandler(console=console, show_path=False, rich_tracebacks=False))
        return
    handler = logging.StreamHandler(sys.stdout)
    journald = bool(os.environ.get("JOURNAL_STREAM"))  # journald stamps lines itself
    fmt = "%(levelname)s %(name)s %(message)s" if journald else \
        "%(asctime)s %(levelname)s %(name)s %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    root.addHandler(handler)


def run(
    config: Path = _config_arg,
    emulate: bool = typer.Option(False, "--emulate", help="first start the site's emulated "
                                 "devices on loopback (gridctl emulate) in a child process"),
    live: bool = typer.Option(False, "--live", help="show a live status view in the terminal"),
    duration: float | None = typer.Option(None, "--duration", min=0.0,
                                          help="stop after this many seconds [s]"),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning, error"),
) -> None:
    """Run the edge controller for CONFIG until stopped (SIGTERM/SIGINT: safe stop; twice: exit)."""
    site = load_site_or_exit(config)
    console = None
    if live:
        from rich.console import Console

        console = Console()
    _setup_logging(log_level, console)
    from gridctl.cli.emulate_launcher import EmulationError, start_emulators, stop_emulators
    from gridctl.daemon.lifecycle.guard import StartRefusedError

    child = None
    try:
        if emulate:
            child = start_emulators(config, site)
        code = asyncio.run(_run_daemon(site, duration, console))
    except (EmulationError, StartRefusedError) as exc:
        raise fail(str(exc), EXIT_RUNTIME) from None
    except OSError as exc:
        raise fail(f"{exc.filename or ''}: {exc.strerror or exc}", EXIT_RUNTIME) from None
    finally:
        if child is not None:
            stop_emulators(child)
    raise typer.Exit(code)


async def _run_daemon(site: SiteConfig, duration: float | None, console) -> int:
    from gridctl.daemon import build_daemon
    from gridctl.ledger.files import LedgerError, LedgerFileError

    try:
        daemon, ledger = build_daemon(site)
    except LedgerError as exc:  # one line naming the file; a damaged file is not touched
        typer.echo(f"error: {exc}", err=True)
        return EXIT_CONFIG if isinstance(exc, LedgerFileError) else EXIT_RUNTIME
    try:
        if console is None:
            return await daemon.run(duration_s=duration)
        from gridctl.cli.live_view import LiveView

        with LiveView(console, daemon) as view:
            return await daemon.run(duration_s=duration, on_cycle=view.update)
    finally:
        ledger.close()


def _socket_path(socket: Path | None, config: Path | None) -> Path:
    if socket is not None:
        return socket
    if config is not None:
        return load_site_or_exit(config).control.socket_path
    env = os.environ.get("GRIDCTL_SOCKET")
    if env:
        return Path(env)
    if DEFAULT_SOCKET.exists():
        return DEFAULT_SOCKET
    local = sorted(Path("var").glob("*/gridctl.sock"))
    return local[0] if local else DEFAULT_SOCKET


def _ask(payload: dict, socket: Path | None, config: Path | None) -> dict:
    from gridctl.daemon.lifecycle.operator import OperatorClientError, request

    try:
        return request(_socket_path(socket, config), payload)
    except OperatorClientError as exc:
        raise fail(str(exc), EXIT_RUNTIME) from None


def _check_time(text: str, option: str) -> str:
    from gridctl.daemon.lifecycle.operator import ProtocolError, parse_time

    try:
        parse_time(text, option)
    except ProtocolError as exc:
        raise fail(str(exc), EXIT_CONFIG) from None
    return text


def status(socket: Path | None = _socket_opt, config: Path | None = _cfg_opt,
           as_json: bool = typer.Option(False, "--json", help="print the raw JSON")) -> None:
    """Show the running daemon: mode, last cycle, devices, plan step, reserve, outbox backlog."""
    result = _ask({"cmd": "status"}, socket, config)
    if as_json:
        typer.echo(json.dumps(result, indent=2, sort_keys=True))
        return
    from gridctl.cli.live_view import status_text

    typer.echo(status_text(result))


def reserve(hours: float = typer.Option(..., "--hours", min=0.0, max=240.0,
                                        help="hours of critical load to keep stored [h]"),
            until: str = typer.Option(..., "--until", help="ISO time with zone, e.g. "
                                      "2026-09-01T06:00+09:00"),
            socket: Path | None = _socket_opt, config: Path | None = _cfg_opt) -> None:
    """Raise the reserve ahead of a warned outage (typhoon) until a time."""
    result = _ask({"cmd": "reserve", "hours_h": hours, "until": _check_time(until, "--until")},
                  socket, config)
    typer.echo(f"reserve {result['reserve']['hours_h']:g} h until {result['reserve']['until_utc']}")


def island(at: str = typer.Option("now", "--at", help="ISO time with zone, or 'now'"),
           socket: Path | None = _socket_opt, config: Path | None = _cfg_opt) -> None:
    """Planned islanding: drive the grid exchange to about zero, then open the tie at a time."""
    result = _ask({"cmd": "island", "at": _check_time(at, "--at")}, socket, config)
    windows = [w for w in result["outage_windows"] if w["reason"] == "operator"]
    typer.echo(f"planned islanding from {windows[-1]['start_utc'] if windows else at}; "
               f"mode now {result['mode']}")


def reconnect(socket: Path | None = _socket_opt, config: Path | None = _cfg_opt) -> None:
    """End planned islanding: reconnect once the grid has been healthy for the configured delay."""
    result = _ask({"cmd": "reconnect"}, socket, config)
    typer.echo(f"reconnect requested; mode now {result['mode']}")


def register(app: typer.Typer) -> None:
    """Add the daemon and operator commands to the root CLI."""
    app.command("run")(run)
    app.command("status")(status)
    app.command("reserve")(reserve)
    app.command("island")(island)
    app.command("reconnect")(reconnect)



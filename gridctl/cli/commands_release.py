"""``gridctl release``: hand every battery, PV inverter and router leg back to its own control.

The unit runs it as ``ExecStopPost``, so it runs after every stop of the daemon, a crash or
a watchdog kill included. SunSpec devices fall back by their revert timers anyway; ECHONET Lite
batteries have none and would hold their last charge or discharge command indefinitely.
Load switches are left as they are: reconnecting shed circuits at once onto an islanded block
could overload it (relay boards fall back by their own watchdog).

Exit codes: 0 every device released, 1 some device could not be reached, 2 bad config.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from gridctl.cli.common import load_site_or_exit, quiet_driver_logs
from gridctl.commission.checks import describe_error
from gridctl.devices import SiteDevices

EXIT_FAILED = 1

_RELEASED_KINDS = ("battery", "pv_inverter", "router")


def release(config: Path = typer.Argument(..., help="site file")) -> None:
    """Release every battery, PV inverter and router link leg of CONFIG (one line per failure)."""
    quiet_driver_logs()
    site = load_site_or_exit(config)
    devices = SiteDevices.from_config(site)
    devices.bindings = {k: b for k, b in devices.bindings.items() if b.kind in _RELEASED_KINDS}

    async def run() -> dict:
        try:
            connected = await devices.connect_all()
            released = await devices.release()
            return {k: connected[k] or released[k] for k in devices.bindings}
        finally:
            await devices.close()

    errors = asyncio.run(run())
    for device_id, error in errors.items():
        if error is not None:
            typer.echo(f"release: {device_id}: {describe_error(error)}", err=True)
    done = sum(1 for e in errors.values() if e is None)
    typer.echo(f"released {done} of {len(errors)} device(s)")
    if done < len(errors):
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Add ``release`` to the root app."""
    app.command("release")(release)

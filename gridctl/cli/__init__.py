"""gridctl command line: a thin typer shell over the application modules.

Each command group lives in its own module and is registered here. Exit codes:
0 ok, 1 runtime failure, 2 configuration or usage error. Bad input prints one line, never a
traceback.
"""

from __future__ import annotations

import typer

from gridctl import __version__
from gridctl.cli import commands_config, commands_devices, commands_simulate
from gridctl.cli import commands_settle
from gridctl.cli import commands_run
from gridctl.cli import commands_cityos
from gridctl.cli import commands_sweep
from gridctl.cli import commands_release

app = typer.Typer(
    name="gridctl",
    help="Neighbourhood energy microgrid controller (P2P exchange, islanding, settlement).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"gridctl {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """gridctl: control, simulate, settle and commission a neighbourhood microgrid."""


commands_config.register(app)
commands_devices.register(app)
commands_simulate.register(app)
commands_settle.register(app)
commands_run.register(app)
commands_cityos.register(app)
commands_sweep.register(app)
commands_release.register(app)


def main() -> None:
    """Console-script entry point."""
    app()

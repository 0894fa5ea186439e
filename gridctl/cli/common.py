"""What every command group shares: exit codes, the one-line failure, loading a site file."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from gridctl.config import ConfigError, SiteConfig, load_site

EXIT_RUNTIME, EXIT_CONFIG = 1, 2


def fail(message: str, code: int) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def load_site_or_exit(path: Path) -> SiteConfig:
    """The validated site, or every problem as ``FILE:LINE: key.path: message`` and exit 2."""
    try:
        return load_site(path)
    except ConfigError as exc:
        for issue in exc.issues:
            typer.echo(str(issue), err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    except OSError as exc:
        typer.echo(f"{path}: cannot read: {exc.strerror}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None


def quiet_driver_logs() -> None:
    """Silence the device libraries' own logging; the CLI reports each failure in one line."""
    # pymodbus and asyncua log every refused connection and session detail; the CLI reports
    # each failure itself, in one line.
    for name in ("pymodbus", "asyncua"):
        logging.getLogger(name).setLevel(logging.CRITICAL)

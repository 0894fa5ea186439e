"""The edge daemon behind ``gridctl run``: an asyncio shell around the pure controller core.

Each poll period runs fixed phases (read one consistent snapshot, decide, write clamped and
expiring setpoints with heartbeats, record). A failing device or stage sets its own fault and
the cycle goes on; the MILP re-plans in a worker with a deadline that the cycle never waits on.

The package is grouped by what a module is:

``gridctl.daemon.stages``
    What one control cycle does, in order: read the fleet, build the snapshot, feed the
    forecast, run the controller loop with the worker-thread planner, write, record periods
    and telemetry (:mod:`~gridctl.daemon.stages.cycle` strings them together).
``gridctl.daemon.lifecycle``
    What keeps the cycle running as a service: composition (``build``), start-up, loop and
    two-stage shutdown (``service``), outbox shipping, systemd notification, the operator
    socket, restart state and the status document.
``gridctl.daemon.clock``
    The time source both use (system clock, or a manual one in tests).

Imports point one way: ``lifecycle`` -> ``stages`` -> ``clock`` (an import-linter contract).
The names callers need are importable from here; the heavy ones (``build_daemon``,
``Daemon``) load on first use, so ``gridctl status`` does not import the whole daemon.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gridctl.daemon.clock import Clock, ManualClock, SystemClock

if TYPE_CHECKING:
    from gridctl.daemon.lifecycle.build import build_daemon
    from gridctl.daemon.lifecycle.service import Daemon

__all__ = ["Clock", "Daemon", "ManualClock", "SystemClock", "build_daemon"]

#: Names loaded on first use, and their modules.
_LAZY = {"build_daemon": "gridctl.daemon.lifecycle.build",
         "Daemon": "gridctl.daemon.lifecycle.service"}


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value

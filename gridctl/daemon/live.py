"""Human views of the daemon: the ``--live`` terminal table and the ``gridctl status`` text."""

from __future__ import annotations

import time
from typing import Any


def status_text(s: dict[str, Any]) -> str:
    """Plain-text rendering of a ``status`` answer (one fact per line)."""
    devices = s.get("devices", {})
    bad = {i: d["fault"] for i, d in devices.items() if not d["ok"]}
    plan = s.get("plan")
    reserve = s.get("reserve")
    lines = [
        f"site {s['site']}: mode {s['mode']} since {s['mode_since_utc']}",
        f"last cycle {s['last_cycle_utc']} ({s['last_cycle_ms']} ms), cycles {s['cycles']}, "
        f"{'healthy' if s['healthy'] else 'UNHEALTHY'}",
        f"devices: {len(devices) - len(bad)}/{len(devices)} ok",
    ]
    lines += [f"  {i}: {fault}" for i, fault in sorted(bad.items())]
    if plan:
        lines.append(f"plan: {plan['status']} made {plan['made_at_utc']}, step {plan['step']}"
                     f"{' (fallback in use)' if s.get('fallback') else ''}")
    else:
        lines.append("plan: none yet (rule-based fallback in use)")
    if s.get("solver_fault"):
        lines.append(f"solver: {s['solver_fault']}")
    lines.append(f"reserve: {reserve['hours_h']:g} h until {reserve['until_utc']}" if reserve
                 else "reserve: policy default")
    for w in s.get("outage_windows", []):
        lines.append(f"planned outage: {w['start_utc']} .. {w['end_utc']} ({w['reason']})")
    if s.get("shed_tiers"):
        lines.append("shedding: " + ", ".join(f"{n}: tiers {t}" for n, t in s["shed_tiers"].items() if t))
    for stage, fault in s.get("stage_faults", {}).items():
        lines.append(f"stage fault {stage}: {fault}")
    lines.append(f"periods waiting for settlement: {s['periods_pending']}; "
                 f"outbox backlog: {s['outbox_backlog']} rows")
    return "\n".join(lines)


class LiveView:
    """A rich live panel updated at most once a second from the cycle callback."""

    def __init__(self, console, daemon) -> None:
        from rich.live import Live

        self.daemon = daemon
        self._live = Live(console=console, refresh_per_second=2, transient=False)
        self._shown = 0.0

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(*exc)

    def update(self, _report) -> None:
        if time.monotonic() - self._shown < 1.0:
            return
        self._shown = time.monotonic()
        from rich.panel import Panel

        self._live.update(Panel(status_text(self.daemon.status()), title="gridctl run"))

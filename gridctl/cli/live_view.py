"""Human views of the daemon: the ``--live`` terminal view and the ``gridctl status`` text.

Both render the daemon's ``status`` document (see :mod:`gridctl.daemon.lifecycle.status`), so
what an operator sees live is exactly what ``gridctl status --json`` answers.
"""

from __future__ import annotations

import time
from typing import Any

#: Least time between two redraws of the live view [s].
REDRAW_S = 1.0


def _f(value: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def _hm(iso: str | None) -> str:
    """``HH:MM:SS`` UTC of an ISO time, for compact views."""
    return "-" if not iso else iso[11:19]


def _grid(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{abs(value):.2f} {'in' if value > 0.0005 else 'out' if value < -0.0005 else ''}".strip()


def _health(s: dict[str, Any]) -> str:
    """``healthy``, else the health in capitals (``DEGRADED``, ``UNCONTROLLED``)."""
    health = s.get("health") or ("healthy" if s.get("healthy") else "unhealthy")
    return health if health == "healthy" else health.upper()


def summary_lines(s: dict[str, Any]) -> list[str]:
    """Mode, cycle, plan, reserve and settlement, one fact per line."""
    devices = s.get("devices", {})
    ok = sum(1 for d in devices.values() if d["ok"])
    plan = s.get("plan")
    reserve = s.get("reserve")
    st = s.get("settlement") or {}
    lines = [
        f"site {s['site']}: mode {s['mode']} since {s['mode_since_utc']}",
        f"last cycle {s['last_cycle_utc']} ({s['last_cycle_ms']} ms), cycles {s['cycles']}, "
        f"{_health(s)}",
        f"devices: {ok}/{len(devices)} ok",
    ]
    if plan:
        lines.append(f"plan: {plan['status']} made {_hm(plan['made_at_utc'])}, step {plan['step']} "
                     f"from {_hm(plan.get('step_start_utc'))}"
                     f"{' (fallback in use)' if s.get('fallback') else ''}")
    else:
        lines.append("plan: none yet (rule-based fallback in use)")
    lines.append(f"reserve: {reserve['hours_h']:g} h until {reserve['until_utc']}" if reserve
                 else "reserve: policy default")
    last = st.get("last")
    lines.append(f"settlement: open period from {_hm(st.get('open_start_utc'))}, settles at "
                 f"{_hm(st.get('next_settlement_utc'))}; last settled "
                 f"{_hm(st.get('last_settled_start_utc'))}"
                 + (f" (P2P {last['sold_kwh']} kWh at {last['price_jpy_per_kwh']} JPY/kWh)"
                    if last else ""))
    return lines


def status_text(s: dict[str, Any]) -> str:
    """Plain-text rendering of a ``status`` answer (``gridctl status``)."""
    lines = summary_lines(s)
    bad = {i: d["fault"] for i, d in s.get("devices", {}).items() if not d["ok"]}
    lines[3:3] = [f"  {i}: {fault}" for i, fault in sorted(bad.items())]
    if s.get("members"):
        lines.append("member      pv_kw  load_kw  battery_kw  soc_pct  grid_kw  p2p_in_kw  shed")
        for name, m in s["members"].items():
            lines.append(f"{name:<10} {_f(m['pv_kw']):>6} {_f(m['load_kw']):>8} "
                         f"{_f(m['battery_kw']):>11} {_f(m['soc_pct'], '{:.0f}'):>8} "
                         f"{_f(m['grid_kw']):>8} {_f(m['p2p_in_kw']):>10}  "
                         f"{','.join(map(str, m['shed_tiers'])) or '-'}")
        t = s.get("totals", {})
        lines.append(f"{'block':<10} {_f(t.get('pv_kw')):>6} {_f(t.get('load_kw')):>8} "
                     f"{_f(t.get('battery_kw')):>11} {'':>8} {_f(t.get('grid_kw')):>8} "
                     f"{_f(t.get('p2p_in_kw')):>10}")
    for link in s.get("links", []):
        lines.append(f"link {link['id']}: {_f(link['flow_kw'])} kW "
                     f"{link['direction'] or 'idle'} (capacity {link['capacity_kw']:g} kW)")
    if s.get("solver_fault"):
        lines.append(f"solver: {s['solver_fault']}")
    for w in s.get("outage_windows", []):
        lines.append(f"planned outage: {w['start_utc']} .. {w['end_utc']} ({w['reason']})")
    for stage, fault in s.get("stage_faults", {}).items():
        lines.append(f"stage fault {stage}: {fault}")
    for t in s.get("transitions", []):
        lines.append(f"transition {t['at_utc']}: {t['from']} -> {t['to']}")
    lines.append(f"periods waiting for settlement: {s['periods_pending']}; "
                 f"outbox backlog: {s['outbox_backlog']} rows")
    if (shipping := shipping_line(s)) is not None:
        lines.append(shipping)
    if s.get("storage_error"):
        lines.append(f"storage failing: {s['storage_error']}")
    return "\n".join(lines)


def shipping_line(s: dict[str, Any]) -> str | None:
    """Why shipping to InfluxDB fails, since when and the next try (None: it does not fail)."""
    sh = s.get("shipper") or {}
    if not sh.get("consecutive_failures"):
        return None
    what = sh.get("rejected") or f"failing ({sh['consecutive_failures']} tries)"
    return (f"shipping {what} since {sh.get('failing_since_utc')}, retry in "
            f"{sh['retry_in_s']:.0f} s: {sh.get('last_error')}")


def _members_table(s: dict[str, Any]):
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), expand=False,
                  show_edge=False,
                  title="kW; grid +import -export; battery +discharge; P2P +in",
                  title_justify="left", title_style="dim")
    for name in ("member", "PV", "load", "batt", "SoC", "grid", "P2P", "plan b/g", "shed", "dev"):
        table.add_column(name, justify="left" if name in ("member", "shed") else "right",
                         no_wrap=True)
    one = "{:.1f}"
    for name, m in s.get("members", {}).items():
        target = m.get("target") or {}
        dev = f"{m['devices_ok']}/{m['devices']}"
        table.add_row(name, _f(m["pv_kw"], one), _f(m["load_kw"], one), _f(m["battery_kw"], one),
                      _f(m["soc_pct"], "{:.0f}%"), _f(m["grid_kw"], "{:+.1f}"),
                      _f(m["p2p_in_kw"], "{:+.1f}"),
                      f"{_f(target.get('battery_kw'), one)}/{_f(target.get('grid_kw'), one)}"
                      if target else "-",
                      ",".join(map(str, m["shed_tiers"])) or "-",
                      dev if m["devices_ok"] == m["devices"] else f"[bold red]{dev}[/]")
    t = s.get("totals", {})
    table.add_section()
    table.add_row("block", _f(t.get("pv_kw"), one), _f(t.get("load_kw"), one),
                  _f(t.get("battery_kw"), one), "", _f(t.get("grid_kw"), "{:+.1f}"),
                  _f(t.get("p2p_in_kw"), "{:+.1f}"), "", "", "", style="bold")
    return table


def _links_line(s: dict[str, Any]) -> str:
    parts = []
    for link in s.get("links", []):
        a, b, flow = link["from_node"], link["to_node"], link["flow_kw"]
        if link["direction"] is None:
            parts.append(f"{a}-{b} {'?' if flow is None else 'idle'}")
        else:
            src, dst = (a, b) if flow > 0 else (b, a)
            parts.append(f"{src}→{dst} {abs(flow):.1f}")
    return "P2P links [kW]: " + (", ".join(parts) if parts else "none")


def _stamp(iso: str | None) -> str:
    """``MM-DD HH:MM:SS`` of an ISO UTC time."""
    return "-" if not iso else f"{iso[5:10]} {iso[11:19]}"


def _head_lines(s: dict[str, Any]) -> list[str]:
    devices = s.get("devices", {})
    ok = sum(1 for d in devices.values() if d["ok"])
    plan, reserve = s.get("plan"), s.get("reserve")
    st = s.get("settlement") or {}
    last = st.get("last")
    plan_text = (f"plan {plan['status']} {_hm(plan['made_at_utc'])} step {plan['step']} "
                 f"({_hm(plan.get('step_start_utc'))[:5]})" if plan else "plan none")
    return [
        f"{s['site']}  {s['mode'].upper()} since {_stamp(s['mode_since_utc'])} UTC",
        f"cycle {s['cycles']} at {_hm(s['last_cycle_utc'])} ({s['last_cycle_ms']:.0f} ms) "
        f"{_health(s)}  devices {ok}/{len(devices)} ok"
        if s.get("last_cycle_ms") is not None else "no cycle yet",
        f"{plan_text}{'  FALLBACK' if s.get('fallback') else ''}  reserve "
        + (f"{reserve['hours_h']:g} h to {_stamp(reserve['until_utc'])}" if reserve else "default"),
        f"settlement: open {_hm(st.get('open_start_utc'))[:5]}, settles "
        f"{_hm(st.get('next_settlement_utc'))[:5]}; last {_hm(st.get('last_settled_start_utc'))[:5]}"
        + (f" P2P {float(last['sold_kwh']):.2f} kWh @ {float(last['price_jpy_per_kwh']):.2f} JPY/kWh"
           if last else ""),
    ]


def render(s: dict[str, Any]):
    """The live view of a status document: summary, member table, links, recent events."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.text import Text

    mode_style = {"grid_connected": "green", "islanded": "yellow"}.get(s["mode"], "magenta")
    head = _head_lines(s)
    events = [f"{_hm(t['at_utc'])} {t['from']}→{t['to']}" for t in s.get("transitions", [])]
    faults = [f"{i}: {d['fault']}" for i, d in s.get("devices", {}).items() if not d["ok"]]
    faults += [f"stage {k}: {v}" for k, v in s.get("stage_faults", {}).items()]
    if (shipping := shipping_line(s)) is not None:
        faults.append(shipping)
    if s.get("storage_error"):
        faults.append(f"storage failing: {s['storage_error']}")
    if s.get("solver_fault"):
        faults.append(f"solver: {s['solver_fault']}")
    tail = [Text(_links_line(s)),
            Text("transitions: " + (", ".join(events[-3:]) if events else "none")),
            Text(f"periods pending {s['periods_pending']}, outbox {s['outbox_backlog']} rows")]
    tail += [Text(f, style="red", no_wrap=True, overflow="ellipsis") for f in faults[:4]]
    return Panel(Group(Text(head[0], style=f"bold {mode_style}"), *(Text(x) for x in head[1:]),
                       _members_table(s), *tail),
                 title="gridctl run", title_align="left", padding=(0, 1))


class LiveView:
    """A rich live view updated at most once a second from the cycle callback.

    Logs go through the same console (see the CLI's logging setup), so they print above the
    view instead of tearing it.
    """

    def __init__(self, console, daemon) -> None:
        from rich.live import Live

        self.daemon = daemon
        self._live = Live(console=console, refresh_per_second=2, transient=False,
                          redirect_stdout=True, redirect_stderr=True)
        self._shown = 0.0

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(*exc)

    def update(self, _report) -> None:
        if time.monotonic() - self._shown < REDRAW_S:
            return
        self._shown = time.monotonic()
        self._live.update(render(self.daemon.status()))

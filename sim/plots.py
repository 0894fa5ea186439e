"""PNG plots of a simulation run (matplotlib, Agg backend: no display needed).

* ``power_stack.png``: block supply stacked (PV used, battery discharge, P2P is internal so it
  is not shown here, grid import) against the load, with charge and export below zero and
  outages shaded;
* ``stored_energy.png``: state of charge per node [%] and the block's stored energy [kWh];
* ``p2p_flows.png``: flow per router link [kW], positive from ``from`` to ``to`` router;
* ``prices.png``: each member's grid import and export price and the P2P clearing price
  [JPY/kWh] per settlement period.

Spans longer than 31 days are averaged to daily values so the plots stay legible.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from gridctl.config import SiteConfig  # noqa: E402
from sim.runner.record import SimResult  # noqa: E402

__all__ = ["write_plots"]

_LONG_DAYS = 31


def _frame(result: SimResult, values: np.ndarray, columns, tz: str) -> pd.DataFrame:
    frame = pd.DataFrame(values, index=result.times_utc.tz_convert(tz), columns=list(columns))
    span_days = len(result.times_utc) * result.step_s / 86400
    return frame.resample("1D").mean() if span_days > _LONG_DAYS else frame


def _shade_outages(ax, result: SimResult, tz: str) -> None:
    out = ~result.grid_available
    if not out.any():
        return
    times = result.times_utc.tz_convert(tz)
    step = pd.Timedelta(seconds=result.step_s)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], out.astype(int), [0]])))
    for first, stop in zip(edges[::2], edges[1::2]):
        ax.axvspan(times[first], times[stop - 1] + step, color="#d62728", alpha=0.12,
                   label="grid outage" if first == edges[0] else None)


def _style(ax, title: str, ylabel: str, tz: str) -> None:
    ax.set_title(title, fontsize=11)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    locator = mdates.AutoDateLocator(tz=tz)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=tz))


def _power_stack(result: SimResult, tz: str, path: Path) -> None:
    s = result.series
    served = (s["load_kw"] - s["critical_shed_kw"] - s["sheddable_shed_kw"]).sum(axis=1)
    grid = s["grid_kw"].sum(axis=1)
    cols = {"PV used": s["pv_kw"].sum(axis=1),
            "battery discharge": np.clip(s["battery_kw"], 0, None).sum(axis=1),
            "grid import": np.clip(s["grid_kw"], 0, None).sum(axis=1),
            "battery charge": -np.clip(-s["battery_kw"], 0, None).sum(axis=1),
            "grid export": -np.clip(-s["grid_kw"], 0, None).sum(axis=1),
            "load served": served, "net grid": grid}
    f = _frame(result, np.column_stack(list(cols.values())), cols.keys(), tz)
    fig, ax = plt.subplots(figsize=(13, 5.5))
    ax.stackplot(f.index, f["PV used"], f["battery discharge"], f["grid import"],
                 labels=["PV used", "battery discharge", "grid import"],
                 colors=["#f2c744", "#2ca02c", "#7f7f7f"], alpha=0.85)
    ax.stackplot(f.index, f["battery charge"], f["grid export"],
                 labels=["battery charge", "grid export"], colors=["#98df8a", "#aec7e8"], alpha=0.85)
    ax.plot(f.index, f["load served"], color="black", lw=1.2, label="load served")
    _shade_outages(ax, result, tz)
    ax.axhline(0, color="black", lw=0.6)
    _style(ax, f"Block power ({result.policy}); supply above zero, charge and export below",
           "power [kW]", tz)
    ax.legend(loc="upper left", ncol=4, fontsize=8, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _stored(site: SiteConfig, result: SimResult, tz: str, path: Path) -> None:
    caps = np.array([sum(b.rating.capacity_kwh for b in n.batteries) for n in site.nodes])
    have = caps > 0
    soc = result.series["stored_kwh"][:, have] / caps[have] * 100.0
    ids = [n for n, h in zip(result.node_ids, have) if h]
    f = _frame(result, soc, ids, tz)
    block = _frame(result, result.series["stored_kwh"].sum(axis=1, keepdims=True), ["block"], tz)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(13, 7), sharex=True, height_ratios=[2, 1])
    for col in f.columns:
        ax1.plot(f.index, f[col], lw=1.2, label=col)
    _shade_outages(ax1, result, tz)
    _style(ax1, f"State of charge per node ({result.policy})", "SoC [%]", tz)
    ax1.set_ylim(0, 100)
    ax1.legend(loc="upper left", ncol=len(ids) + 1, fontsize=8)
    ax2.fill_between(block.index, block["block"], color="#1f77b4", alpha=0.4)
    ax2.plot(block.index, block["block"], color="#1f77b4", lw=1.0)
    _shade_outages(ax2, result, tz)
    _style(ax2, f"Block stored energy (of {caps.sum():.0f} kWh)", "stored [kWh]", tz)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _p2p(result: SimResult, tz: str, path: Path) -> None:
    f = _frame(result, result.series["link_flow_kw"], result.link_ids, tz)
    fig, ax = plt.subplots(figsize=(13, 5))
    for col in f.columns:
        ax.plot(f.index, f[col], lw=1.1, label=col)
    _shade_outages(ax, result, tz)
    ax.axhline(0, color="black", lw=0.6)
    _style(ax, f"P2P flow per router link ({result.policy}); > 0 from 'from' to 'to' router",
           "flow [kW]", tz)
    ax.legend(loc="upper left", ncol=4, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _prices(result: SimResult, tz: str, path: Path) -> None:
    if not result.settlements:
        return
    starts = pd.DatetimeIndex([st.start_utc for _, st in result.settlements]).tz_convert(tz)
    p2p = [float(st.price_jpy_per_kwh) for _, st in result.settlements]
    imp = {m.member_id: [] for m in result.settlements[0][1].members}
    exp = {k: [] for k in imp}
    for _, st in result.settlements:
        for m in st.members:
            imp[m.member_id].append(float(m.import_price_jpy_per_kwh))
            exp[m.member_id].append(float(m.export_price_jpy_per_kwh))
    fig, ax = plt.subplots(figsize=(13, 5))
    for kind, series, style in (("import", imp, "-"), ("export", exp, "--")):
        groups: dict[tuple, list[str]] = {}
        for member, values in series.items():  # members with the same prices share a line
            groups.setdefault(tuple(values), []).append(member)
        for values, members in groups.items():
            names = members[0] if len(members) == 1 else f"{members[0]} +{len(members) - 1}"
            ax.step(starts, values, where="post", lw=1.1, ls=style, label=f"{kind} {names}")
    ax.step(starts, p2p, where="post", color="black", lw=1.4, label="P2P clearing price")
    _style(ax, "Prices per 30-minute settlement period", "price [JPY/kWh]", tz)
    ax.legend(loc="upper left", ncol=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(out_dir: Path, site: SiteConfig, result: SimResult, prefix: str = "") -> list[Path]:
    """Write the four plots of ``result`` into ``out_dir``; returns their paths."""
    tz = site.site.timezone
    paths = [out_dir / f"{prefix}{name}.png" for name in ("power_stack", "stored_energy",
                                                          "p2p_flows", "prices")]
    _power_stack(result, tz, paths[0])
    _stored(site, result, tz, paths[1])
    _p2p(result, tz, paths[2])
    _prices(result, tz, paths[3])
    return [p for p in paths if p.exists()]

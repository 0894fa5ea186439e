"""Files a simulation leaves in its output folder: kpis.json, timeseries.csv, link_flows.csv,
settlement.csv, the settlement ledger (SQLite) and the plots."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd

from gridctl.config import SiteConfig
from sim.runner.record import LINK_SERIES, NODE_SERIES, SimResult

__all__ = ["write_kpis", "write_ledger", "write_settlement_csv", "write_timeseries"]


def write_kpis(out_dir: Path, kpis: dict) -> Path:
    """``kpis.json`` (sorted keys, stable for diffs)."""
    path = out_dir / "kpis.json"
    path.write_text(json.dumps(kpis, indent=2, sort_keys=True, default=str) + "\n")
    return path


def write_timeseries(out_dir: Path, result: SimResult, name: str = "timeseries.csv") -> Path:
    """Per step and node: ``timestamp_utc,node`` and :data:`NODE_SERIES`; links in ``link_flows.csv``."""
    n_steps, n_nodes = result.series["pv_kw"].shape
    stamps = np.repeat(result.times_utc.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy(), n_nodes)
    frame = pd.DataFrame({"timestamp_utc": stamps, "node": np.tile(result.node_ids, n_steps),
                          "grid_available": np.repeat(result.grid_available, n_nodes)})
    for key in NODE_SERIES:
        frame[key] = result.series[key].reshape(-1)
    path = out_dir / name
    frame.to_csv(path, index=False, float_format="%.6f")
    n_links = len(result.link_ids)
    links = pd.DataFrame({
        "timestamp_utc": np.repeat(result.times_utc.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy(), n_links),
        "link": np.tile(result.link_ids, n_steps)})
    for key in LINK_SERIES:
        links[key] = result.series[key].reshape(-1)
    links.to_csv(out_dir / name.replace("timeseries", "link_flows"), index=False, float_format="%.6f")
    return path


def write_settlement_csv(out_dir: Path, result: SimResult) -> Path:
    """One row per period and member: energy, prices and money of the settled period."""
    rows = []
    for _, st in result.settlements:
        for line in st.members:
            rows.append({
                "period_start_utc": st.start_utc.isoformat(), "member": line.member_id,
                "role": line.role, "grid_import_kwh": line.grid_import_kwh,
                "grid_export_kwh": line.grid_export_kwh, "p2p_bought_kwh": line.p2p_bought_kwh,
                "p2p_sold_kwh": line.p2p_sold_kwh, "import_price_jpy_per_kwh": line.import_price_jpy_per_kwh,
                "export_price_jpy_per_kwh": line.export_price_jpy_per_kwh,
                "p2p_price_jpy_per_kwh": st.price_jpy_per_kwh, "p2p_paid_jpy": line.p2p_paid_jpy,
                "p2p_received_jpy": line.p2p_received_jpy, "fee_jpy": line.fee_jpy,
                "bill_jpy": line.bill_jpy, "counterfactual_jpy": line.counterfactual_jpy,
                "checks_ok": st.checks.ok})
    path = out_dir / "settlement.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def write_ledger(out_dir: Path, site: SiteConfig, result: SimResult, clock_utc: dt.datetime) -> Path | None:
    """The settled periods in a gridctl ledger (``ledger.sqlite``), so clerks' reports work on it.

    ``clock_utc`` is recorded as the entry time of every period (simulated time, so the file
    is the same for the same seed). Returns None when :mod:`gridctl.ledger` is not available.
    """
    try:
        from gridctl.ledger import Ledger
    except ImportError:
        return None
    path = out_dir / "ledger.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    ledger = Ledger(path, site_id=site.site.id, clock=lambda: clock_utc)
    try:
        ledger.record_many((st, readings) for readings, st in result.settlements)
    finally:
        ledger.close()
    return path

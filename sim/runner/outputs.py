"""Files a simulation leaves in its output folder: kpis.json, timeseries.csv, link_flows.csv,
settlement.csv, the settlement ledger (SQLite) and the plots."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from gridctl.ledger import Ledger
from sim.runner.record import LINK_SERIES, NODE_SERIES, SimResult

__all__ = ["LedgerSettlements", "write_kpis", "write_ledger", "write_settlement_csv", "write_timeseries"]

LEDGER_FILE = "ledger.sqlite"


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
                "bill_jpy": line.bill_jpy, "grid_only_jpy": line.grid_only_jpy,
                "checks_ok": st.checks.ok})
    path = out_dir / "settlement.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


class LedgerSettlements(list):
    """``SimResult.settlements`` of a run that settled into a ledger file as it went.

    A list of ``(PeriodReadings, PeriodSettlement)`` (what the KPIs read) that also owns the
    open :class:`~gridctl.ledger.Ledger` the periods were recorded in. Without an output folder
    the ledger is a temporary file, deleted with this list unless :func:`write_ledger` moved it.

    Parameters
    ----------
    site_id : str
    clock : callable
        Simulated time for the ledger's entry times (deterministic files).
    path : Path or None
        Ledger file to (re)create, e.g. ``OUT/ledger.sqlite``; None: a temporary file.
    """

    def __init__(self, site_id: str, clock: Callable[[], dt.datetime], path: Path | None = None) -> None:
        super().__init__()
        folder = None
        if path is None:
            folder = Path(tempfile.mkdtemp(prefix="gridctl-sim-"))
            path = folder / LEDGER_FILE
        _unlink_sqlite(path)  # the ledger is this run's alone
        self.path = Path(path)
        self.ledger = Ledger(self.path, site_id=site_id, clock=clock, durable=False)
        self._cleanup = weakref.finalize(self, _discard, self.ledger, folder)

    def save(self, target: Path) -> Path:
        """Close the ledger and put its file at ``target`` (replacing what is there)."""
        self.ledger.close()
        if self.path.resolve() != target.resolve():
            _unlink_sqlite(target)
            shutil.move(self.path, target)
            self.path = target
        self._cleanup()
        return target


def _unlink_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _discard(ledger, folder: Path | None) -> None:
    ledger.close()
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def write_ledger(out_dir: Path, result: SimResult) -> Path | None:
    """The run's ledger as ``OUT/ledger.sqlite``, so clerks' reports and ``settle verify`` work on it.

    The simulator recorded every period into it as it went (``gridctl.ledger.SettlementBook``,
    simulated entry times, the import earlier in the start's month as the opening balance).
    Returns None when the result carries no ledger.
    """
    if not isinstance(result.settlements, LedgerSettlements):
        return None
    return result.settlements.save(out_dir / LEDGER_FILE)

"""A small sweep on a generated 3-home block: 2 battery scales x 2 mechanisms, one day,
hourly re-plans, no baselines (about a second per case)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from gridctl.cli import app
from sim.sitegen import BlockShape, write_site

SHAPE = BlockShape("sweep3", "chain", 3, store=False, mall=False)

SWEEP_YAML = """\
base_site: site/sweep3.yaml
window:
  start: 2026-08-10
  days: 1
  step: 30min
  replan: 1h
grid:
  battery_scale: [0.5, 2.0]
  mechanism: [sdr, mmr]
metrics: [total_cost_jpy, min_member_savings_vs_grid_only_jpy, self_sufficiency_pct, peak_import_kw,
          battery_throughput_kwh, rule_violations_kwh]
"""


def write_sweep(folder: Path, text: str = SWEEP_YAML) -> Path:
    """The site under ``folder/site`` and the sweep file ``folder/sweep.yaml``."""
    write_site(SHAPE, folder / "site")
    path = folder / "sweep.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def run_cli(*args: str):
    return CliRunner().invoke(app, ["sweep", *args])

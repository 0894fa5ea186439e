"""`gridctl simulate` end to end: outputs, the KPI table, parallel seeds, one-line errors (exit 2)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridctl.cli import app

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "misono.yaml"
runner = CliRunner()


def _simulate(*args):
    return runner.invoke(app, ["simulate", str(CONFIG), *args])


def test_simulate_writes_every_output(tmp_path):
    out = tmp_path / "sim"
    result = _simulate("--start", "2026-08-01", "--days", "1", "--out", str(out), "--baselines",
                       "standalone", "--workers", "1", "--outage", "2026-08-01T18:00/2h",
                       "--outage-warning", "3h")
    assert result.exit_code == 0, result.output
    assert "Block KPIs" in result.output and "rolling" in result.output
    for name in ("kpis.json", "timeseries.csv", "link_flows.csv", "settlement.csv", "ledger.sqlite",
                 "power_stack.png", "stored_energy.png", "p2p_flows.png", "prices.png"):
        assert (out / name).stat().st_size > 0, name
    doc = json.loads((out / "kpis.json").read_text())
    block = doc["policies"]["rolling"]["block"]
    for key in ("energy_cost_jpy", "savings_vs_standalone_jpy", "self_sufficiency_pct",
                "self_consumption_pct", "p2p_delivered_kwh", "grid_import_kwh", "grid_export_kwh",
                "peak_import_kw", "curtailment_kwh", "battery_throughput_kwh", "equivalent_cycles",
                "unserved_critical_kwh"):
        assert key in block, key
    member = doc["policies"]["rolling"]["members"]["home-1"]
    assert "energy_cost_jpy" in member and "unserved_tier_1_kwh" in member
    outage = doc["policies"]["rolling"]["outages"][0]
    assert outage["duration_h"] == 2 and outage["warning_h"] == 3
    assert doc["policies"]["rolling"]["solver"]["replans"] >= 24
    assert doc["policies"]["rolling"]["wall_s"] > 0
    header = (out / "timeseries.csv").read_text().splitlines()[0]
    assert header.startswith("timestamp_utc,node,grid_available,pv_available_kw")
    assert len((out / "timeseries.csv").read_text().splitlines()) == 1 + 96 * 7


def test_parallel_seeds_use_their_own_folders(tmp_path):
    result = _simulate("--start", "2026-08-01", "--days", "0.25", "--out", str(tmp_path),
                       "--baselines", "none", "--seeds", "1..2", "--workers", "2")
    assert result.exit_code == 0, result.output
    costs = []
    for seed in (1, 2):
        doc = json.loads((tmp_path / f"seed-{seed}" / "kpis.json").read_text())
        assert doc["scenario"]["seed"] == seed
        costs.append(doc["policies"]["rolling"]["block"]["energy_cost_jpy"])
    assert costs[0] != costs[1]


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text("timestamp,node,pv_kw,load_kw\n" + "\n".join(rows) + "\n")
    return path


def _day_rows(node="home-1", skip=None, days=1):
    rows = []
    for k in range(96 * days):
        if k == skip:
            continue
        hour, minute = divmod(15 * k, 60)
        day, hour = divmod(hour, 24)
        rows.append(f"2026-08-{1 + day:02d}T{hour:02d}:{minute:02d}:00+09:00,{node},0.5,0.4")
    return rows


@pytest.mark.parametrize("extra, expected", [
    (["--outage", "2026-08-01T14:00"], "expected START/DURATION"),
    (["--outage", "2026-08-01T14:00/soon"], "expected a duration"),
    (["--outage-warning", "1 day", "--outage", "2026-08-01T14:00/1h"], "--outage-warning"),
    (["--step", "7min"], "must divide 30 minutes"),
    (["--seeds", "3..1"], "--seeds"),
    (["--baselines", "oracle"], "--baselines"),
    (["--start", "2026-08-01T00:10"], "JST half hour"),
    (["--start", "2024-08-01"], "has no version valid on 2024-08-01"),
])
def test_bad_options_exit_2_with_one_line(tmp_path, extra, expected):
    result = _simulate("--start", "2026-08-01", "--days", "1", "--out", str(tmp_path), *extra)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in result.output


@pytest.mark.parametrize("rows, expected", [
    (_day_rows("home-9"), "unknown node 'home-9'"),
    (_day_rows(skip=40), "node home-1 has a gap"),
    (_day_rows()[:48], "the simulation needs"),
])
def test_bad_profiles_csv_exit_2_with_one_line(tmp_path, rows, expected):
    path = _csv(tmp_path / "p.csv", rows)
    result = _simulate("--start", "2026-08-01", "--days", "1", "--out", str(tmp_path / "o"),
                       "--profiles", str(path))
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0] and str(path) in lines[0]


def test_measured_profiles_drive_the_run(tmp_path):
    path = _csv(tmp_path / "p.csv", _day_rows("home-2"))
    out = tmp_path / "o"
    result = _simulate("--start", "2026-08-01", "--days", "1", "--out", str(out), "--profiles",
                       str(path), "--baselines", "none", "--workers", "1")
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "kpis.json").read_text())
    assert "measured p.csv; synthetic for home-1" in doc["policies"]["rolling"]["profiles"]
    series = (out / "timeseries.csv").read_text().splitlines()
    home2 = [line.split(",") for line in series[1:] if line.split(",")[1] == "home-2"]
    assert all(float(row[3]) == 0.5 and float(row[6]) == 0.4 for row in home2)

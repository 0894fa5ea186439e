"""The same sweep run serially, on a process pool of 2 and on a Dask LocalCluster(processes=True,
n_workers=2) gives identical result tables."""

from __future__ import annotations

import pandas as pd

from tests.sweep.helpers import run_cli, write_sweep


def test_serial_process_pool_and_dask_give_identical_tables(tmp_path):
    sweep = write_sweep(tmp_path)
    tables = {}
    for scheduler in ("serial", "process:2", "local:2"):
        out = tmp_path / scheduler.replace(":", "-")
        result = run_cli(str(sweep), "--out", str(out), "--scheduler", scheduler)
        assert result.exit_code == 0, result.output
        assert "4 cases: 0 already done (skipped), 4 run, 0 failed" in result.output
        assert len(list((out / "cases").glob("*.json"))) == 4
        tables[scheduler] = pd.read_csv(out / "results.csv")
    serial = tables["serial"]
    assert list(serial.columns) == ["case_hash", "policy", "battery_scale", "mechanism",
                                    "total_cost_jpy", "min_member_savings_vs_grid_only_jpy",
                                    "self_sufficiency_pct", "peak_import_kw",
                                    "battery_throughput_kwh", "rule_violations_kwh"]
    assert len(serial) == 4 and serial["case_hash"].is_unique
    assert set(serial["policy"]) == {"rolling"}
    assert sorted(zip(serial["battery_scale"], serial["mechanism"])) == [
        (0.5, "mmr"), (0.5, "sdr"), (2.0, "mmr"), (2.0, "sdr")]
    # the parameters matter: a bigger battery moves more energy
    small = serial[serial["battery_scale"] == 0.5]["battery_throughput_kwh"].max()
    large = serial[serial["battery_scale"] == 2.0]["battery_throughput_kwh"].min()
    assert large > small
    assert (serial["rule_violations_kwh"] == 0).all()
    for scheduler in ("process:2", "local:2"):
        pd.testing.assert_frame_equal(tables[scheduler], serial, check_exact=True)


def test_plots_per_metric_and_varied_parameter(tmp_path):
    sweep = write_sweep(tmp_path)
    out = tmp_path / "out"
    result = run_cli(str(sweep), "--out", str(out), "--scheduler", "process:2")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert len(names) == 12 and "total_cost_jpy_vs_battery_scale.png" in names
    assert all((out / "plots" / n).stat().st_size > 5000 for n in names)

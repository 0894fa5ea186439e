"""Sweep files: bad input gives one FILE:LINE line and exit 2; cases, hashes and site changes."""

from __future__ import annotations

import dataclasses

import pytest

from sim.sweep.apply import CaseError, LoadedTariffSet, apply_case
from sim.sweep.case import case_hash
from sim.sweep.load import load_sweep
from sim.sweep.spec import CaseParams, TariffSet
from tests.sweep.helpers import SWEEP_YAML, run_cli, write_sweep

BAD = [
    # (replace this, with that, line, expected text)
    ("  mechanism: [sdr, mmr]", "  mechanisms: [sdr, mmr]", 9, "grid.mechanisms: unknown key"),
    ("  mechanism: [sdr, mmr]", "  mechanism: [sdr, pay_as_bid]", 9, "grid.mechanism[1]"),
    ("  days: 1", "  days: 0", 4, "window.days: must be > 0"),
    ("  step: 30min", "  step: 7min", 5, "window.step: must divide 30 minutes"),
    ("  replan: 1h", "  replan: soon", 6, "window.replan"),
    ("metrics: [total_cost_jpy,", "metrics: [total_cost_yen,", 10, "unknown metric 'total_cost_yen'"),
    ("grid:\n", "cases:\n  - {battery_capacity_kwh: {home-9: 5}}\ngrid:\n", 8,
     "no node 'home-9' in the base site"),
    ("grid:\n", "cases:\n  - {mechanism: sdr}\ngrid:\n", 8, "cases[0].mechanism: also varied in grid"),
    ("grid:\n", "cases:\n  - {outage_start: 2026-08-10T14:00}\ngrid:\n", 8,
     "outage_start and outage_length go together"),
    ("grid:\n", "cases:\n  - {tariff: {home-1: no-such-tariff}}\ngrid:\n", 8,
     "unknown import tariff 'no-such-tariff'"),
    ("grid:\n", "cases:\n  - {tariff_set: cheap}\ngrid:\n", 8, "unknown tariff set 'cheap'"),
    ("  start: 2026-08-10", "  start: 2026-08-10T10:10", 3, "window.start: must lie on a JST half hour"),
]


@pytest.mark.parametrize("old,new,line,expected", BAD, ids=[b[3][:30] for b in BAD])
def test_bad_sweep_file_gives_one_line_with_file_and_line(tmp_path, old, new, line, expected):
    assert old in SWEEP_YAML
    sweep = write_sweep(tmp_path, SWEEP_YAML.replace(old, new))
    result = run_cli(str(sweep), "--out", str(tmp_path / "out"), "--scheduler", "serial")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {sweep}:{line}: "), lines[0]
    assert expected in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()  # nothing started


def test_bad_scheduler_and_missing_file_are_one_line(tmp_path):
    sweep = write_sweep(tmp_path)
    result = run_cli(str(sweep), "--scheduler", "cluster:2")
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "--scheduler 'cluster:2'" in result.output
    result = run_cli(str(tmp_path / "absent.yaml"))
    assert result.exit_code == 2 and "absent.yaml: file not found" in result.output


def test_grid_times_cases_and_duplicates(tmp_path):
    text = SWEEP_YAML.replace("grid:\n", "cases:\n  - {seed: 1}\n  - {seed: 2}\n  - {seed: 1}\ngrid:\n")
    sweep = load_sweep(write_sweep(tmp_path, text))
    # 2 scales x 2 mechanisms x seeds {1, 2} (seed 1 twice is one case)
    assert len(sweep.tasks) == 8
    assert len({t.case_hash for t in sweep.tasks}) == 8
    assert [t.index for t in sweep.tasks] == list(range(8))
    assert {(t.params.seed, t.params.mechanism) for t in sweep.tasks} == {
        (s, m) for s in (1, 2) for m in ("sdr", "mmr")}


def test_case_hash_depends_on_params_window_site_and_code(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path))
    task = sweep.tasks[0]
    key = case_hash(task.params, None, task.window, "site", "code")
    assert key == case_hash(CaseParams.model_validate(task.params.model_dump()), None,
                            task.window, "site", "code")
    assert key != case_hash(task.params.model_copy(update={"seed": 7}), None, task.window, "site", "code")
    assert key != case_hash(task.params, None, dataclasses.replace(task.window, days=2), "site", "code")
    assert key != case_hash(task.params, None, task.window, "other site", "code")
    assert key != case_hash(task.params, None, task.window, "site", "other code")
    again = load_sweep(sweep.path)
    assert [t.case_hash for t in again.tasks] == [t.case_hash for t in sweep.tasks]


def test_apply_case_changes_the_site_and_keeps_it_valid(tmp_path):
    base = load_sweep(write_sweep(tmp_path)).site
    capacities = {n.id: [b.rating.capacity_kwh for b in n.batteries] for n in base.nodes}
    params = CaseParams(battery_scale=2.0, battery_capacity_kwh={"home-1": 4.0},
                        tariff={"home-2": "tepco-business-tou"}, mechanism="uniform_auction",
                        reserve_hours_h=3.0)
    site = apply_case(base, params, None)
    assert site.node("home-1").batteries[0].rating.capacity_kwh == pytest.approx(8.0)
    assert site.node("home-3").batteries[0].rating.capacity_kwh == pytest.approx(2 * capacities["home-3"][0])
    assert site.node("home-3").batteries[0].rating.max_charge_kw == base.node("home-3").batteries[0].rating.max_charge_kw
    assert site.node("home-2").contract.tariff == "tepco-business-tou"
    assert site.market.mechanism == "uniform_auction"
    assert site.islanding.reserve_hours_h == 3.0
    assert site.control.solver_threads == 1
    assert base.market.mechanism == "sdr"  # the base site is untouched
    tariff_set = LoadedTariffSet("b", None, TariffSet(buyback_tariff={"home-1": "post-fit"}))
    assert apply_case(base, CaseParams(), tariff_set).node("home-1").contract.buyback_tariff == "post-fit"
    with pytest.raises(CaseError, match="unknown export tariff 'fit-1999'"):
        apply_case(base, CaseParams(), LoadedTariffSet("x", None, TariffSet(buyback_tariff={"home-1": "fit-1999"})))


def test_every_shipped_sweep_file_loads():
    from pathlib import Path

    files = sorted((Path(__file__).resolve().parents[2] / "configs" / "sweeps").glob("*.yaml"))
    assert files
    for path in files:
        sweep = load_sweep(path)
        assert sweep.tasks and sweep.metrics
    misono = load_sweep(files[0].parent / "misono-battery.yaml")
    assert len(misono.tasks) == 16 and misono.window.days == 2 and misono.window.replan_s == 3600


def test_tls_options_need_a_tls_scheduler_and_all_three_files(tmp_path):
    sweep = write_sweep(tmp_path)
    ca = tmp_path / "ca.pem"
    ca.write_text("not used")
    result = run_cli(str(sweep), "--scheduler", "process:2", "--tls-ca-file", str(ca),
                     "--tls-cert", str(ca), "--tls-key", str(ca))
    assert result.exit_code == 2 and "need a --scheduler tls://host:port" in result.output
    result = run_cli(str(sweep), "--scheduler", "tls://127.0.0.1:8786", "--tls-ca-file", str(ca))
    assert result.exit_code == 2 and "go together" in result.output
    result = run_cli(str(sweep), "--scheduler", "tls://127.0.0.1:8786", "--tls-ca-file", str(ca),
                     "--tls-cert", str(tmp_path / "no.pem"), "--tls-key", str(ca))
    assert result.exit_code == 2 and "no.pem: file not found" in result.output

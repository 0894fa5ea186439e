"""The simulator settles into a real ledger as it goes; `settle verify --config` passes on its output."""

import datetime as dt
import gc
import json
from decimal import Decimal as D
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gridctl.cli import app
from gridctl.config import load_site
from gridctl.ledger import Ledger
from sim.profiles import synthetic_profiles
from sim.runner import Scenario, run_policy
from sim.runner.outputs import write_ledger
from sim.runner.scenario import SimulationRequest, run_request

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "misono.yaml"
UTC = dt.timezone.utc
AUG_3 = dt.datetime(2026, 8, 2, 15, tzinfo=UTC)  # 2026-08-03 00:00 JST
HISTORY = dt.timedelta(days=28)


@pytest.fixture(scope="module")
def site():
    return load_site(CONFIG)


def _verify(path: Path, *config):
    result = CliRunner().invoke(app, ["settle", "verify", "--ledger", str(path), *config])
    return result.exit_code, result.stdout + result.stderr


def test_a_mid_month_run_leaves_a_ledger_that_verifies_with_the_config(site, tmp_path):
    profiles = synthetic_profiles(site, AUG_3 - HISTORY, AUG_3 + dt.timedelta(days=1), 900, 1)
    result = run_policy(Scenario(site, profiles, AUG_3, AUG_3 + dt.timedelta(days=1)), "standalone")
    path = write_ledger(tmp_path, result)
    assert path == tmp_path / "ledger.sqlite"
    code, out = _verify(path, "--config", str(CONFIG))
    assert code == 0 and f"ok: {7 + 48 * 8} entries, 48 periods" in out, out
    with Ledger(path) as store:
        (month_start, opening), = store.openings().items()
        assert [s for s, _ in store.settlements()] == [st for _, st in result.settlements]
    # the opening balance is the profiles' estimate of the import on August 1 and 2
    k0 = profiles.index_of(AUG_3)
    estimate = np.clip(profiles.load_kw[:, k0 - 2 * 96:k0] - profiles.pv_kw[:, k0 - 2 * 96:k0], 0, None).sum(axis=1) / 4
    assert month_start == "2026-07-31T15:00:00+00:00"
    assert [float(opening[n]) for n in result.node_ids] == pytest.approx(list(estimate), abs=1e-6)
    first = result.settlements[0][1]
    expected = [D("32.08") if opening[n] < 120 else D("38.68") for n in result.node_ids if n.startswith("home")]
    assert [first.member(n).import_price_jpy_per_kwh for n in result.node_ids if n.startswith("home")] == expected


def test_a_run_from_the_first_of_the_month_has_no_opening_balance(site, tmp_path):
    start = dt.datetime(2026, 7, 31, 15, tzinfo=UTC)
    profiles = synthetic_profiles(site, start - HISTORY, start + dt.timedelta(hours=6), 900, 1)
    result = run_policy(Scenario(site, profiles, start, start + dt.timedelta(hours=6)), "standalone")
    with Ledger(write_ledger(tmp_path, result)) as store:
        assert store.openings() == {} and len(store.settlements()) == 12


def test_the_temporary_ledger_of_a_run_goes_with_its_result(site):
    profiles = synthetic_profiles(site, AUG_3 - HISTORY, AUG_3 + dt.timedelta(hours=2), 900, 1)
    result = run_policy(Scenario(site, profiles, AUG_3, AUG_3 + dt.timedelta(hours=2)), "standalone")
    path = result.settlements.path
    assert path.is_file() and len(result.settlements) == 4
    del result
    gc.collect()
    assert not path.parent.exists()


@pytest.mark.slow
def test_run_request_writes_the_ledger_into_the_output_folder(tmp_path):
    req = SimulationRequest(config_path=CONFIG, start_utc=AUG_3, days=0.25, out_dir=tmp_path, baselines=())
    doc = run_request(req, workers=1)[1]
    assert doc["policies"]["rolling"]["ledger"] == str(tmp_path / "ledger.sqlite")
    code, out = _verify(tmp_path / "ledger.sqlite", "--config", str(CONFIG))
    assert code == 0 and "12 periods" in out, out
    assert json.loads((tmp_path / "kpis.json").read_text())["policies"]["rolling"]["block"]["settlement_periods"] == 12

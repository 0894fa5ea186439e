"""PV production from the simulator's ledger to the city feed, and ledgers without PV.

A simulated day of the Misono block is settled into a real ledger (the simulator records each
member's PV counter with the period's readings, as the daemon does); ``gridctl settle verify``
and ``gridctl cityos export`` then run on that file through the CLI.
"""

import datetime as dt
import json
from decimal import Decimal as D

import pytest

from gridctl.cityos.validate import problems
from gridctl.config import load_site
from gridctl.ledger import Ledger
from sim.profiles import synthetic_profiles
from sim.runner import Scenario, run_policy
from sim.runner.outputs import write_ledger
from tests.cityos.test_cli_cityos import MEMBER_IDS, SITE, credentials, gridctl, site_with_cityos

START = dt.datetime(2026, 7, 31, 15, tzinfo=dt.timezone.utc)  # 2026-08-01 00:00 JST


@pytest.fixture(scope="module")
def sim_day(tmp_path_factory):
    """A simulated day (standalone policy: fast) and its ledger."""
    site = load_site(SITE)
    profiles = synthetic_profiles(site, START - dt.timedelta(days=1), START + dt.timedelta(days=1), 900, 2)
    result = run_policy(Scenario(site, profiles, START, START + dt.timedelta(days=1)), "standalone")
    return result, write_ledger(tmp_path_factory.mktemp("pvfeed"), result)


def _export(ledger, site, out, form="keyvalues", env=None):
    code, _, err = gridctl("cityos", "export", "--ledger", ledger, "-c", site, "--format", form, "--out", out,
                           env=env)
    assert code == 0, err
    return json.loads(out.read_text(encoding="utf-8"))


def test_a_ledger_with_pv_verifies(sim_day):
    _, ledger = sim_day
    code, out, err = gridctl("settle", "verify", "--ledger", ledger, "--config", SITE)
    assert code == 0 and "48 periods" in out, out + err


@pytest.mark.parametrize("form", ["keyvalues", "normalized"])
def test_block_pv_is_the_plants_pv_as_average_power(sim_day, tmp_path, form):
    result, ledger = sim_day
    docs = _export(ledger, SITE, tmp_path / "feed.json", form)
    pv = [d for d in docs if d["type"] == "GreenEnergyMeasurement"]
    assert len(pv) == 48 and all(":block:" in d["id"] for d in pv)  # one per period, block only
    assert all(problems(d, form) == [] for d in docs)
    value = (lambda d: d["solarPowerGenerated"]) if form == "keyvalues" else (
        lambda d: d["solarPowerGenerated"]["value"])
    # the plant's delivered PV of the block, averaged over each period [kW]
    plant_kw = result.series["pv_kw"].sum(axis=1).reshape(48, 2).mean(axis=1)
    assert [value(d) for d in pv] == pytest.approx(list(plant_kw), abs=1e-5)
    assert max(plant_kw) > 5 and min(plant_kw) == 0  # a day: sun at noon, none at night
    text = json.dumps(docs)
    assert ":member-" not in text and not any(f'"{m}"' in text for m in MEMBER_IDS)


def test_opted_in_member_pv_sums_to_the_block(sim_day, tmp_path):
    _, ledger = sim_day
    site = site_with_cityos(tmp_path, "http://unused.invalid", per_member=True)
    env = credentials(tmp_path, **{"cityos-pseudonym-key": "p" * 40})
    docs = _export(ledger, site, tmp_path / "feed.json", env=env)
    pv = [d for d in docs if d["type"] == "GreenEnergyMeasurement"]
    assert len(pv) == 48 * (1 + len(MEMBER_IDS))
    by_period: dict[str, dict[str, list[float]]] = {}
    for d in pv:
        stamp = d["id"].rsplit(":", 3)[-3:]
        row = by_period.setdefault(":".join(stamp), {"block": [], "member": []})
        row["block" if ":block:" in d["id"] else "member"].append(d["solarPowerGenerated"])
    assert len(by_period) == 48
    for stamp, row in by_period.items():
        assert len(row["block"]) == 1 and len(row["member"]) == len(MEMBER_IDS)
        assert row["block"][0] == pytest.approx(sum(row["member"]), abs=1e-9), stamp
    with Ledger(ledger) as store:  # each member's value is its counter difference over half an hour
        noon_utc = START + dt.timedelta(hours=12)
        (settlement, revision), = store.settlements(noon_utc, noon_utc + dt.timedelta(minutes=30))
        readings = store.readings(settlement.start_utc, revision)
    counted_kw = sorted(float((c.end_import_kwh - c.start_import_kwh) / D("0.5")) for c in readings.channels
                        if c.channel == "pv")
    noon = by_period["2026-08-01T12:00+09:00"]["member"]
    assert sorted(noon) == pytest.approx(counted_kw, abs=1e-9) and sum(counted_kw) > 0


def test_an_old_ledger_without_pv_exports_no_pv_entity_and_verifies(tmp_path):
    readings, ledger = tmp_path / "aug.csv", tmp_path / "ledger.sqlite"
    assert gridctl("settle", "sample-readings", "-c", SITE, "--month", "2026-08", "--out", readings)[0] == 0
    assert ",pv," not in readings.read_text(encoding="utf-8")
    assert gridctl("settle", "run", "-c", SITE, "--ledger", ledger, "--readings", readings,
                   "--from", "2026-08-01T00:00", "--to", "2026-08-01T06:00")[0] == 0
    code, out, err = gridctl("settle", "verify", "--ledger", ledger, "--config", SITE)
    assert code == 0 and "12 periods" in out, out + err
    docs = _export(ledger, SITE, tmp_path / "feed.json")
    assert [d["type"] for d in docs] == ["EnergyCommunity"] + ["ACMeasurement"] * 12

"""The block's rules on simulated days of a block shaped unlike Misono.

A chain of four homes (one without PV, one without a battery) with a store and a mall that
pay a demand charge; a summer day with an unannounced evening outage.  Checked on the plant,
the ground truth, with :mod:`sim.rules_check`: no load shed while grid-connected, no grid power
resold over the links, no battery export through a FIT meter, no export while shedding; and the
controller costs no more than the stand-alone rule and raises no demand-charged peak above it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from sim.kpis import policy_kpis
from sim.outages import parse_outage
from sim.profiles import synthetic_profiles
from sim.runner import Scenario, run_policy
from sim.runner.forecasting import HISTORY_DAYS
from sim.sitegen import BlockShape, generate_site

JST = dt.timezone(dt.timedelta(hours=9))
START = dt.datetime(2026, 8, 4, 0, 0, tzinfo=JST).astimezone(dt.UTC)
SHAPE = BlockShape("chain4", "chain", 4, homes_without_pv=(2,), homes_without_battery=(3,),
                   demand_charge_jpy_per_kw_month=1800.0)


@pytest.fixture(scope="module")
def day():
    _text, site = generate_site(SHAPE)
    profiles = synthetic_profiles(site, START - dt.timedelta(days=HISTORY_DAYS),
                                  START + dt.timedelta(days=1), 900.0, seed=2)
    outage = parse_outage("2026-08-04T19:00/3h", site.site.timezone, dt.timedelta(0))
    plain = Scenario(site, profiles, START, START + dt.timedelta(days=1))
    stormy = Scenario(site, profiles, START, START + dt.timedelta(days=1), outages=(outage,))
    kpis = {policy: policy_kpis(site, run_policy(plain, policy), ()) for policy in
            ("rolling", "standalone")}
    kpis["rolling-outage"] = policy_kpis(site, run_policy(stormy, "rolling"), (outage,))
    return site, kpis


@pytest.mark.parametrize("run", ["rolling", "rolling-outage", "standalone"])
def test_no_rule_breaks_on_the_plant(day, run):
    _site, kpis = day
    violations = kpis[run]["block"]["rule_violations"]
    assert violations == {"shed_while_connected_kwh": 0.0, "resold_kwh": 0.0,
                          "forbidden_export_kwh": 0.0, "export_while_shedding_kwh": 0.0}
    for member in kpis[run]["members"].values():
        assert member["rule_violations_kwh"] == 0.0


def test_the_controller_shares_surplus_and_costs_less_than_standalone(day):
    _site, kpis = day
    rolling, alone = kpis["rolling"]["block"], kpis["standalone"]["block"]
    assert rolling["p2p_from_surplus_kwh"] > 5.0  # it does trade, from surplus only
    assert Decimal(rolling["total_cost_jpy"]) < Decimal(alone["total_cost_jpy"])


def test_demand_charged_peaks_are_not_raised(day):
    site, kpis = day
    for node in site.nodes:
        if node.contract.demand_charge_jpy_per_kw_month > 0:
            rolling = kpis["rolling"]["members"][node.id]
            alone = kpis["standalone"]["members"][node.id]
            assert rolling["peak_import_kw"] <= 1.05 * alone["peak_import_kw"] + 1e-6
            assert rolling["demand_charge_jpy"] <= alone["demand_charge_jpy"] + 1e-6


def test_the_unannounced_outage_sheds_only_while_islanded(day):
    _site, kpis = day
    outage = kpis["rolling-outage"]
    assert outage["outages"][0]["steps_in_span"] == 12
    shed = outage["block"]["unserved_critical_kwh"] + sum(
        v for k, v in outage["block"].items() if k.startswith("unserved_tier_"))
    assert outage["block"]["rule_violations"]["shed_while_connected_kwh"] == 0.0
    assert shed >= 0.0 and outage["block"]["lost_load_jpy"] >= 0.0

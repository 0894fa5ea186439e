"""The pure block plant: energy conservation, counters, clamping, ramps, islanded cells."""

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from gridctl.config import load_site
from sim.plant.block import BlockPlant, PlantCommand
from sim.profiles import synthetic_profiles

UTC = dt.timezone.utc
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "misono.yaml"
START = dt.datetime(2026, 7, 31, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def site():
    return load_site(CONFIG)


@pytest.fixture(scope="module")
def day(site):
    return synthetic_profiles(site, START, START + dt.timedelta(days=1), 900, seed=11)


def _random_day(site, day, outage_steps=range(40, 70), seed=0):
    """A day of random, often infeasible setpoints, islanded in ``outage_steps``."""
    plant = BlockPlant(site)
    rng = np.random.default_rng(seed)
    state = first = plant.initial_state(60.0)
    steps = []
    n, n_links = len(plant.node_ids), len(plant.link_ids)
    for t in range(day.pv_kw.shape[1]):
        cmd = PlantCommand(battery_kw=rng.uniform(-120, 120, n),
                           pv_limit_kw=np.where(rng.random(n) < 0.2, rng.uniform(0, 3, n), np.inf),
                           link_flow_kw=rng.uniform(-40, 40, n_links),
                           shed_fraction=(rng.random(n) < 0.3).astype(float))
        state, flows = plant.step(state, cmd, day.pv_kw[:, t], day.load_kw[:, t],
                                  t not in outage_steps, 900.0)
        steps.append((cmd, flows, state))
    return plant, first, steps


def test_energy_is_conserved_over_a_day_with_an_outage(site, day):
    plant, first, steps = _random_day(site, day)
    h = 0.25
    sources = sinks = losses = 0.0
    for _, f, _ in steps:
        sources += (f.pv_kw.sum() + np.clip(f.grid_kw, 0, None).sum()) * h
        sinks += ((f.critical_served_kw + f.sheddable_served_kw).sum() + np.clip(-f.grid_kw, 0, None).sum()) * h
        losses += f.link_loss_kw.sum() * h + f.battery_loss_kwh.sum()
    stored_change = steps[-1][2].stored_kwh.sum() - first.stored_kwh.sum()
    assert sources == pytest.approx(sinks + losses + stored_change, abs=1e-6)
    # and per node and step: pv + grid + battery + link_in = load served
    for _, f, _ in steps:
        link_in = plant.link_net_in_kw(f.link_flow_kw)
        balance = f.pv_kw + f.grid_kw + f.battery_kw + link_in - f.critical_served_kw - f.sheddable_served_kw
        assert np.abs(balance).max() < 1e-9


def test_counters_equal_integrated_flows(site, day):
    plant, _, steps = _random_day(site, day, seed=1)
    final = steps[-1][2]
    h = 0.25

    def total(fn):
        return sum(fn(f) for _, f, _ in steps) * h

    c = final.counters
    assert np.allclose(c["grid_import_kwh"], total(lambda f: np.clip(f.grid_kw, 0, None)), atol=1e-9)
    assert np.allclose(c["grid_export_kwh"], total(lambda f: np.clip(-f.grid_kw, 0, None)), atol=1e-9)
    assert np.allclose(c["pv_kwh"], total(lambda f: f.pv_kw), atol=1e-9)
    assert np.allclose(c["battery_discharge_kwh"], total(lambda f: np.clip(f.battery_kw, 0, None)), atol=1e-9)
    assert np.allclose(c["critical_shed_kwh"], total(lambda f: f.critical_shed_kw), atol=1e-9)
    lc = final.link_counters
    assert np.allclose(lc["fwd_sent_kwh"], total(lambda f: np.clip(f.link_flow_kw, 0, None)), atol=1e-9)
    assert np.allclose(lc["bwd_received_kwh"],
                       total(lambda f: plant.link_efficiency * np.clip(-f.link_flow_kw, 0, None)), atol=1e-9)
    for name, values in list(c.items()) + list(lc.items()):
        assert np.all(values >= 0), name


def test_setpoints_are_clamped_to_ratings_soc_and_link_capacity(site, day):
    plant, _, steps = _random_day(site, day, seed=2)
    specs = plant.battery_specs
    for cmd, f, state in steps:
        assert np.all(np.abs(f.link_flow_kw) <= plant.link_capacity_kw + 1e-9)
        assert np.all(f.pv_kw <= np.minimum(cmd.pv_limit_kw, plant.pv_rated_kw) + 1e-9)
        for i, spec in enumerate(specs):
            if spec is None:
                assert f.battery_kw[i] == 0
                continue
            assert -spec.max_charge_kw - 1e-9 <= f.battery_kw[i] <= spec.max_discharge_kw + 1e-9
            floor = spec.capacity_kwh * spec.soc_min_pct / 100
            ceil = spec.capacity_kwh * spec.soc_max_pct / 100
            # at the floor only self-discharge takes more: at most a day's worth in a day
            day_loss = floor * spec.self_discharge_pct_per_day / 100
            assert floor - day_loss <= state.stored_kwh[i] <= ceil + 1e-9


def test_battery_ramps_at_its_rate(site, day):
    data = site.model_dump(mode="python")
    data["nodes"][0]["devices"][1]["rating"]["ramp_kw_per_s"] = 0.01  # 9 kW per 15 min at most
    from gridctl.config import SiteConfig

    ramped = BlockPlant(SiteConfig.model_validate(data))
    state = ramped.initial_state(50.0)
    cmd = ramped.idle_command()
    cmd = PlantCommand(np.array([4.0] + [0.0] * 6), cmd.pv_limit_kw, cmd.link_flow_kw, cmd.shed_fraction)
    state, flows = ramped.step(state, cmd, np.zeros(7), np.ones(7), True, 60.0)
    # one minute at 0.01 kW/s reaches 0.6 kW; the step average is half of that
    assert flows.battery_kw[0] == pytest.approx(0.3)
    assert state.battery_end_kw[0] == pytest.approx(0.6)


def test_islanded_cell_sheds_sheddable_before_critical(site):
    plant = BlockPlant(site)
    i = plant.node_ids.index("home-5")  # no battery
    state = plant.initial_state(50.0)
    load = np.zeros(7)
    load[i] = 2.0
    cmd = plant.idle_command()
    _, f = plant.step(state, cmd, np.zeros(7), load, False, 900.0)
    crit = 2.0 * plant.critical_share[i]
    # the ring's batteries feed the cell through the routers when the block is islanded
    assert f.critical_shed_kw[i] == pytest.approx(0.0)
    lonely = BlockPlant(site, p2p=False)
    _, f = lonely.step(lonely.initial_state(50.0), lonely.idle_command(), np.zeros(7), load, False, 900.0)
    assert f.sheddable_shed_kw[i] == pytest.approx(2.0 - crit)
    assert f.critical_shed_kw[i] == pytest.approx(crit)
    pv = np.zeros(7)
    pv[i] = 1.5  # covers the critical share and part of the rest
    _, f = lonely.step(lonely.initial_state(50.0), lonely.idle_command(), pv, load, False, 900.0)
    assert f.critical_shed_kw[i] == 0 and f.sheddable_shed_kw[i] == pytest.approx(0.5)


def test_islanded_surplus_curtails_pv_and_without_p2p_links_carry_nothing(site, day):
    lonely = BlockPlant(site, p2p=False)
    state = lonely.initial_state(95.0)  # full batteries
    cmd = PlantCommand(np.zeros(7), np.full(7, np.inf), np.full(7, 10.0), np.zeros(7))
    pv = np.full(7, 4.0)
    _, f = lonely.step(state, cmd, pv, np.full(7, 1.0), False, 900.0)
    assert np.all(f.link_flow_kw == 0)
    assert np.all(f.grid_kw == 0)
    assert np.all(f.pv_curtailed_kw > 0)
    assert np.allclose(f.pv_kw + f.battery_kw, 1.0)

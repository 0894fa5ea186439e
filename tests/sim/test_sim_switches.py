"""The simulator sheds through simulated switches where a site has them, ideally where not."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from gridctl.config import load_site
from gridctl.controller.switches import SwitchCommand
from gridctl.controller.types import Setpoints
from sim.outages import parse_outage
from sim.plant.block import BlockPlant
from sim.profiles import synthetic_profiles
from sim.runner import Scenario, run_policy
from sim.runner.bridge import Bridge
from sim.runner.scenario import SimulationRequest, _scenario_info
from sim.runner.switches import SwitchFault
from tests.fixtures.relay_site import relay_site_tree, write_relay_site

UTC = dt.timezone.utc
MISONO = Path(__file__).resolve().parents[2] / "configs" / "misono.yaml"
START = dt.datetime(2026, 8, 1, 3, tzinfo=UTC)  # 2026-08-01 12:00 JST
ALL_TIERS = {"home-1": (1,), "home-3": (2,), "store": (3,), "mall": (3,)}


@pytest.fixture(scope="module")
def relay_site(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    return load_site(write_relay_site(tmp_path_factory.mktemp("simrelay")))


def _shed(bridge: Bridge, commands=(), at=START) -> dict[str, float]:  # noqa: ANN001
    cmd = bridge.command(Setpoints(at, shed_tiers=ALL_TIERS, grid_tie_open=True, switch_commands=tuple(commands)))
    return dict(zip(bridge.node_ids, cmd.shed_fraction.tolist()))


def test_switched_site_sheds_the_share_behind_open_contactors(relay_site) -> None:  # noqa: ANN001
    bridge = Bridge(relay_site, BlockPlant(relay_site))
    assert _shed(bridge) == {n: 0.0 for n in bridge.node_ids}  # asked, but nothing switched yet
    off = [SwitchCommand("store-relay", 0, False), SwitchCommand("store-relay", 1, False),
           SwitchCommand("mall-relay", 0, False)]
    shed = _shed(bridge, off)
    assert shed["store"] == 1.0 and shed["mall"] == pytest.approx(1 / 3)
    assert shed["home-1"] == shed["home-3"] == 0.0  # no switches: cannot shed by itself


def test_stuck_and_late_contactors(relay_site) -> None:  # noqa: ANN001
    faults = {("store-relay", 1): SwitchFault(stuck=True), ("mall-relay", 0): SwitchFault(delay_s=60.0)}
    bridge = Bridge(relay_site, BlockPlant(relay_site), faults)
    off = [SwitchCommand("store-relay", c, False) for c in (0, 1)] + [SwitchCommand("mall-relay", 0, False)]
    assert _shed(bridge, off) == pytest.approx({**{n: 0.0 for n in bridge.node_ids}, "store": 0.5})
    later = _shed(bridge, off, START + dt.timedelta(seconds=60))
    assert later["store"] == 0.5 and later["mall"] == pytest.approx(1 / 3)
    readings = bridge.switches.readings(START + dt.timedelta(seconds=60))
    assert [(r.commanded_on, r.feedback_on) for r in readings["store-relay"]] == [(False, False), (False, True)]


def test_site_without_switches_keeps_ideal_shedding() -> None:
    site = load_site(MISONO)
    bridge = Bridge(site, BlockPlant(site))
    assert bridge.switches is None
    shed = _shed(bridge)
    assert shed["home-1"] == shed["store"] == 1.0 and shed["home-2"] == 0.0
    info = _scenario_info(SimulationRequest(MISONO, START, 1.0, Path("unused")), 1)
    assert info["shedding"] == "not actuated"


def test_outage_run_sheds_through_switches_and_redrives_a_reset_board(relay_site, tmp_path) -> None:  # noqa: ANN001
    outage = parse_outage("2026-08-01T18:00/4h", "Asia/Tokyo")
    reset_at = dt.datetime(2026, 8, 1, 10, 0, tzinfo=UTC)  # 19:00 JST, an hour into the outage
    profiles = synthetic_profiles(relay_site, START - dt.timedelta(days=28), START + dt.timedelta(days=0.5), 900, 1)
    scenario = Scenario(relay_site, profiles, START, START + dt.timedelta(days=0.5), outages=(outage,),
                        switch_faults={("mall-relay", c): SwitchFault(reset_at_utc=reset_at) for c in (0, 1, 2)})
    steps = []
    result = run_policy(scenario, "rolling", trace=lambda k, now, snap, sp, _c: steps.append((now, snap, sp)))
    islanded = [(now, snap, sp) for now, snap, sp in steps if sp.grid_tie_open]
    assert islanded, "the outage islands the block"
    store = result.node_ids.index("store")
    shed_steps = result.series["sheddable_shed_kw"][:, store] > 0
    assert shed_steps.any()
    # every step the store sheds, its switches were commanded off in that step
    for k in np.flatnonzero(shed_steps):
        if k < len(steps) and steps[k][2].grid_tie_open:
            assert any(c.device_id == "store-relay" and not c.on for c in steps[k][2].switch_commands)
    assert not any(not c.on for _now, _snap, sp in steps if not sp.grid_tie_open and sp.at_utc < outage.start_utc
                   for c in sp.switch_commands)
    # the reset shows at 19:00 (all connected) and is re-driven in that very step
    at_reset = next((snap, sp) for now, snap, sp in steps if now == reset_at)
    mall_before = [sp for now, _s, sp in steps if now == reset_at - dt.timedelta(minutes=15)][0]
    assert all(not c.on for c in mall_before.switch_commands if c.device_id == "mall-relay")
    assert all(r.commanded_on for r in at_reset[0].switches["mall-relay"])
    assert all(not c.on for c in at_reset[1].switch_commands if c.device_id == "mall-relay")

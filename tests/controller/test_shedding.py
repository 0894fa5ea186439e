"""The load-switch state machine, cycle by cycle: order, feedback, faults, reboots, restore."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gridctl.config import load_site
from gridctl.controller import DeviceHealth, Setpoints, Snapshot
from gridctl.controller.shedding import ShedResult, advance, switched_tiers
from gridctl.controller.switches import ShedState, SwitchReading
from gridctl.controller.topology import site_index
from tests.fixtures.relay_site import relay_site_tree, write_relay_site

T0 = dt.datetime(2026, 8, 3, 3, 0, tzinfo=dt.timezone.utc)
CYCLE = dt.timedelta(seconds=2)
#: Tier 3: store (2 channels) and mall (3); tier 2: home-3 (1); tier 1: home-1 (1).
NODES = {"store": (0, 1), "mall": (0, 1, 2), "home-3": (0,), "home-1": (0,)}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    folder = tmp_path_factory.mktemp("shed")
    return load_site(write_relay_site(folder, relay_site_tree(relay_nodes=NODES)))


class Boards:
    """Switch devices that follow commands at once (feedback too), with fault knobs."""

    def __init__(self, site) -> None:  # noqa: ANN001
        self.on = {key: True for keys in switched_tiers(site).values() for key in keys}
        self.stuck: set[tuple[str, int]] = set()
        self.dead: set[str] = set()
        self.devices = {d.id: DeviceHealth(True) for _, d in site.all_devices()}

    def apply(self, result: ShedResult) -> None:
        for c in result.commands:
            if c.device_id not in self.dead:
                self.on[(c.device_id, c.channel)] = c.on

    def reset(self, device_id: str) -> None:
        for key in self.on:
            if key[0] == device_id:
                self.on[key] = True

    def snapshot(self, at: dt.datetime) -> Snapshot:
        switches: dict[str, list[SwitchReading]] = {}
        for (device_id, channel), on in self.on.items():
            if device_id in self.dead:
                continue
            feedback = True if (device_id, channel) in self.stuck else on
            switches.setdefault(device_id, []).append(SwitchReading(channel, on, feedback))
        devices = {**self.devices, **{d: DeviceHealth(False, "no answer") for d in self.dead}}
        return Snapshot(at, devices=devices, switches=switches)


ALL = {"store": (3,), "mall": (3,), "home-3": (2,), "home-1": (1,), "home-2": (1,)}


def run(site, boards: Boards, state: ShedState, at: dt.datetime, shed=None, tie_open=True) -> ShedResult:  # noqa: ANN001
    setpoints = Setpoints(at, shed_tiers=ALL if shed is None else shed, grid_tie_open=tie_open)
    result = advance(site, state, setpoints, boards.snapshot(at), at)
    boards.apply(result)
    return result


def off_channels(result: ShedResult) -> set[tuple[str, int]]:
    return {(c.device_id, c.channel) for c in result.commands if not c.on}


TIER3 = {("store-relay", 0), ("store-relay", 1), ("mall-relay", 0), ("mall-relay", 1), ("mall-relay", 2)}
TIER2 = {("home-3-relay", 0)}
TIER1 = {("home-1-relay", 0)}


def test_sheds_in_order_one_tier_per_cycle(site) -> None:  # noqa: ANN001
    boards, state = Boards(site), ShedState()
    seen = []
    for k in range(4):
        result = run(site, boards, state, T0 + k * CYCLE)
        state = result.state
        seen.append(off_channels(result))
        assert len(result.commands) == 7  # every switched channel, every cycle
    assert seen == [TIER3, TIER3 | TIER2, TIER3 | TIER2 | TIER1, TIER3 | TIER2 | TIER1]
    assert state.off_tiers == (3, 2, 1)


def test_next_tier_waits_for_feedback(site) -> None:  # noqa: ANN001
    boards, state = Boards(site), ShedState()
    boards.stuck.add(("store-relay", 1))  # its contactor does not follow (yet)
    state = run(site, boards, state, T0).state
    result = run(site, boards, state, T0 + CYCLE)
    assert off_channels(result) == TIER3  # tier 2 waits: the store's channel 1 is unconfirmed
    boards.stuck.clear()
    result = run(site, boards, result.state, T0 + 2 * CYCLE)
    assert off_channels(result) == TIER3 | TIER2


def test_disobeying_switch_raises_the_next_tier(site) -> None:  # noqa: ANN001
    boards, state = Boards(site), ShedState()
    boards.stuck.add(("mall-relay", 2))
    only3 = {"store": (3,), "mall": (3,)}
    notes = []
    for k in range(3):
        result = run(site, boards, state, T0 + k * CYCLE, shed=only3)
        state = result.state
        notes += result.notes
    # cycle 0 sheds tier 3; cycles 1 and 2 see mall-relay 2 still on: a fault at the 2nd
    assert off_channels(result) == TIER3 | TIER2
    assert state.forced_tiers == (2,) and ("mall-relay", 2) in state.failed
    assert any("mall-relay channel 2: commanded off, still on after 2 cycles: fault" in n for n in notes)
    assert any("tier 2 shed because a switch of tier 3 did not obey" in n for n in notes)
    result = run(site, boards, state, T0 + 3 * CYCLE, shed=only3)
    assert off_channels(result) == TIER3 | TIER2  # the forced tier stays off while islanded


def test_reboot_is_redriven_in_the_same_cycle(site) -> None:  # noqa: ANN001
    boards, state = Boards(site), ShedState()
    for k in range(3):
        state = run(site, boards, state, T0 + k * CYCLE).state
    boards.reset("mall-relay")  # power loss: every output back to its default (connected)
    result = run(site, boards, state, T0 + 3 * CYCLE)
    assert off_channels(result) == TIER3 | TIER2 | TIER1
    assert sum("mall-relay channel" in n and "re-driven" in n for n in result.notes) == 3
    assert all(not boards.on[key] for key in TIER3)
    result = run(site, boards, result.state, T0 + 4 * CYCLE)
    assert not result.state.failed and not result.notes


def test_restore_in_reverse_order_with_delay(site) -> None:  # noqa: ANN001
    boards, state = Boards(site), ShedState()
    for k in range(3):
        state = run(site, boards, state, T0 + k * CYCLE).state
    t = T0 + 3 * CYCLE  # the tie closes: the decision sheds nothing any more
    restored = []
    for k in range(20):  # 40 s of cycles
        at = t + k * CYCLE
        result = run(site, boards, state, at, shed={}, tie_open=False)
        if result.state.off_tiers != state.off_tiers:
            restored.append(((at - t).total_seconds(), set(state.off_tiers) - set(result.state.off_tiers)))
        state = result.state
    assert restored == [(10.0, {1}), (20.0, {2}), (30.0, {3})]
    assert not off_channels(result)


def test_never_sheds_while_the_tie_is_closed(site) -> None:  # noqa: ANN001
    boards, state = Boards(site), ShedState()
    for k in range(3):
        result = run(site, boards, state, T0 + k * CYCLE, tie_open=False)
        state = result.state
        assert not off_channels(result)
    assert state.off_tiers == ()


def test_only_switched_nodes_are_commanded(site) -> None:  # noqa: ANN001
    result = run(site, Boards(site), ShedState(), T0)
    assert {c.device_id for c in result.commands} == {"store-relay", "mall-relay", "home-3-relay", "home-1-relay"}


def test_dead_device_keeps_its_commands_and_is_reported(site) -> None:  # noqa: ANN001
    boards, state = Boards(site), ShedState()
    state = run(site, boards, state, T0, shed={}).state
    boards.dead.add("store-relay")
    result = run(site, boards, state, T0 + CYCLE, shed={"store": (3,), "mall": (3,)})
    store = {c.channel: c.on for c in result.commands if c.device_id == "store-relay"}
    mall = {c.channel: c.on for c in result.commands if c.device_id == "mall-relay"}
    assert store == {0: True, 1: True} and mall == {0: False, 1: False, 2: False}
    assert "switch device store-relay: no reading; its channels keep their last command" in result.notes


def test_a_cycle_run_twice_counts_once(site) -> None:  # noqa: ANN001
    boards, state = Boards(site), ShedState()
    state = run(site, boards, state, T0).state
    first = run(site, boards, state, T0 + CYCLE)
    again = advance(site, first.state, Setpoints(T0 + CYCLE, shed_tiers=ALL, grid_tie_open=True),
                    boards.snapshot(T0 + CYCLE), T0 + CYCLE)
    assert again.state.off_tiers == first.state.off_tiers == (3, 2)


def test_site_without_switches_is_untouched(tmp_path: Path) -> None:
    plain = load_site(write_relay_site(tmp_path, relay_site_tree(relay_nodes={})))
    state = ShedState()
    result = advance(plain, state, Setpoints(T0, shed_tiers=ALL, grid_tie_open=True), Snapshot(T0), T0)
    assert result.commands == () and result.state is state


def test_a_restart_mid_outage_keeps_the_tiers_it_finds_shed(site) -> None:  # noqa: ANN001
    """A daemon restarted while islanded starts from a fresh state: the circuits it finds
    disconnected stay disconnected (connecting them all at once could overload the batteries)."""
    boards = Boards(site)
    for key in TIER3 | TIER2:
        boards.on[key] = False
    result = run(site, boards, ShedState(), T0)
    assert off_channels(result) >= TIER3 | TIER2
    assert result.state.off_tiers[:2] == (3, 2)
    result = run(site, boards, result.state, T0 + CYCLE)
    assert off_channels(result) == TIER3 | TIER2 | TIER1


def test_a_restart_with_the_tie_closed_restores_what_it_finds_step_by_step(site) -> None:  # noqa: ANN001
    boards = Boards(site)
    for key in TIER3 | TIER2:
        boards.on[key] = False
    state, restored = ShedState(), []
    for k in range(15):
        at = T0 + k * CYCLE
        result = run(site, boards, state, at, shed={}, tie_open=False)
        if result.state.off_tiers != state.off_tiers and k:
            restored.append(((at - T0).total_seconds(), set(state.off_tiers) - set(result.state.off_tiers)))
        state = result.state
        if k == 0:
            assert off_channels(result) == TIER3 | TIER2  # nothing reconnected at once
    assert restored == [(10.0, {2}), (20.0, {3})]


def test_a_node_without_switches_cannot_shed_in_a_switched_site(site, tmp_path: Path) -> None:  # noqa: ANN001
    """Where shedding is actuated through switches, the plan may shed only switched load: a
    node with no switch has nothing that could disconnect its sheddable share."""
    index = site_index(site)
    by_id = dict(zip(index.node_ids, index.critical_share, strict=True))
    node = {n.id: n for n in site.nodes}
    assert not node["home-2"].load.switches and by_id["home-2"] == 1.0
    assert node["home-1"].load.switches
    assert by_id["home-1"] == pytest.approx(node["home-1"].load.critical_share_pct / 100.0)
    plain = load_site(write_relay_site(tmp_path, relay_site_tree(relay_nodes={})))
    plain_share = dict(zip(site_index(plain).node_ids, site_index(plain).critical_share, strict=True))
    assert plain_share["home-2"] == pytest.approx(node["home-2"].load.critical_share_pct / 100.0)


def test_a_shed_nodes_load_reading_is_taken_back_to_its_demand(site) -> None:  # noqa: ANN001
    """The router meters only the circuits still connected; decisions need the demand."""
    from gridctl.controller import NodeReading
    from gridctl.controller.shedding import demand_snapshot

    boards = Boards(site)
    boards.on[("mall-relay", 0)] = False  # one of the mall's three channels open
    for key in TIER2:
        boards.on[key] = False  # home-3's only channel open
    base = boards.snapshot(T0)
    served = {"mall": 30.0, "home-3": 0.3, "home-1": 0.8}
    snap = Snapshot(T0, nodes={k: NodeReading(load_kw=v) for k, v in served.items()},
                    devices=base.devices, switches=base.switches)
    node = {n.id: n for n in site.nodes}
    out = demand_snapshot(site, ShedState(), snap)
    able = {k: 1.0 - node[k].load.critical_share_pct / 100.0 for k in served}
    assert out.node("mall").load_kw == pytest.approx(30.0 / (1.0 - able["mall"] / 3))
    assert out.node("home-3").load_kw == pytest.approx(0.3 / (1.0 - able["home-3"]))
    assert out.node("home-1").load_kw == 0.8  # every channel connected: the reading is the demand
    everything_on = Boards(site).snapshot(T0)
    plain = Snapshot(T0, nodes={k: NodeReading(load_kw=v) for k, v in served.items()},
                     devices=everything_on.devices, switches=everything_on.switches)
    assert demand_snapshot(site, ShedState(), plain) is plain


def test_reconnecting_restores_every_tier_before_the_tie_may_close(site) -> None:  # noqa: ANN001
    """Load is never shed while the grid is up: the tiers come back while still islanded, one
    restore step apart, the last by the time the reconnect delay is over."""
    boards, state = Boards(site), ShedState()
    for k in range(3):
        state = run(site, boards, state, T0 + k * CYCLE).state
    assert state.off_tiers == (3, 2, 1)
    reconnect_at = T0 + dt.timedelta(seconds=100)
    restored = []
    for k in range(3, 60):
        at = T0 + k * CYCLE
        setpoints = Setpoints(at, shed_tiers=ALL, grid_tie_open=True)  # the plan still sheds
        result = advance(site, state, setpoints, boards.snapshot(at), at, reconnect_at)
        boards.apply(result)
        if result.state.off_tiers != state.off_tiers:
            restored.append(((reconnect_at - at).total_seconds(), set(state.off_tiers) - set(result.state.off_tiers)))
        state = result.state
    assert restored == [(30.0, {1}), (20.0, {2}), (10.0, {3})]
    assert state.off_tiers == () and not off_channels(result)

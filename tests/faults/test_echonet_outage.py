"""The site-level outage at the ECHONET Lite site (configs/misono-echonet.yaml), on real emulators.

Home 1 (tier 1) and home 3 (tier 2) are ECHONET Lite homes whose sheddable circuits hang on an
ECHONET switch (0x05FD, 0x80); the store (tier 3, shed first) switches its circuits with a Modbus
TCP relay board. Batteries nearly empty and hardly any PV: an outage must be met by shedding.
The real daemon, drivers, core, optimizer and ledger control the emulated devices on loopback.

Grid lost -> islanded within one cycle; tiers switched off in order (3, 2, 1), each confirmed by
its switches' feedback before the next; the critical load stays served; a relay board that
reboots mid-outage is re-driven within one cycle; when the grid returns the tiers come back in
reverse order (1, 2, 3) before the tie closes.
"""

from __future__ import annotations


import pytest

from gridctl.config import load_site
from gridctl.controller.types import Mode
from tests.faults.blocks import commanded_off, fault_site, next_cycles, running_block, served, until
from tests.fixtures.emulators import REPO, write_site_config
from tests.fixtures.relay_site import dump_tree

from ruamel.yaml import YAML

ECHONET_SITE = REPO / "configs" / "misono-echonet.yaml"
NODES = ["home-1", "home-3", "store"]
#: Switch channels of each node, in shed order: tier 3 (store), tier 2 (home 3), tier 1 (home 1).
STORE = ("store-relays", (0, 1))
HOME_3 = ("home-3-switch", (0,))
HOME_1 = ("home-1-switch", (0,))


def _site_file(folder):  # noqa: ANN001, ANN202
    """misono-echonet with empty batteries and almost no PV at the chosen nodes, on free ports."""
    tree = YAML(typ="rt").load(ECHONET_SITE.read_text(encoding="utf-8"))
    for node in tree["nodes"]:
        for device in node["devices"]:
            if device["kind"] == "battery":
                device["rating"]["soc_min_pct"], device["rating"]["soc_max_pct"] = 50, 52
            if device["kind"] == "pv_inverter":
                device["rating"]["ac_kw"], device["rating"]["dc_kwp"] = 0.1, 0.1
    source = dump_tree(tree, folder / "source.yaml")
    return write_site_config(folder, source=source, node_ids=NODES)


@pytest.fixture
async def block(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.chdir(tmp_path)
    site = load_site(_site_file(tmp_path))
    site = fault_site(site, tmp_path, reconnect_delay_s=2, restore_step_delay_s=1.0)
    async with running_block(site, tmp_path) as (emulated, daemon, reports):
        yield site, emulated, daemon, reports


def _all_served(emulated) -> list[bool]:  # noqa: ANN001
    return served(emulated, STORE) + served(emulated, HOME_3) + served(emulated, HOME_1)


def _feedback(report, switch: tuple[str, tuple[int, ...]]) -> list[bool | None]:  # noqa: ANN001
    device_id, channels = switch
    return [s.feedback_on for s in report.snapshot.switches[device_id] if s.channel in channels]


@pytest.mark.slow
async def test_echonet_site_outage_sheds_in_order_keeps_critical_and_restores(block) -> None:  # noqa: ANN001
    site, emulated, daemon, reports = block
    average_kw = {n.id: n.load.annual_kwh / 8760.0 for n in site.nodes}
    await next_cycles(reports, 2)
    assert all(_all_served(emulated))
    assert not any(c.on is False for r in reports for c in r.decision.setpoints.switch_commands)

    # Grid lost: islanded within one cycle (the cycle in flight may have read the grid before).
    emulated.set_grid_connected(False)
    await next_cycles(reports, 2)
    assert daemon.cycle.state.mode is Mode.ISLANDED
    start = len(reports)
    await until(lambda: not any(_all_served(emulated)), 60.0, "all three tiers shed")
    outage = reports[start - 2:]
    first = {device_id: next(k for k, r in enumerate(outage) if commanded_off(r, device_id))
             for device_id in (STORE[0], HOME_3[0], HOME_1[0])}
    assert first[STORE[0]] < first[HOME_3[0]] < first[HOME_1[0]]  # tier 3, then 2, then 1 ...
    # ... each only once the tier before was confirmed off by its switches' feedback
    assert _feedback(outage[first[HOME_3[0]]], STORE) == [False, False]
    assert _feedback(outage[first[HOME_1[0]]], HOME_3) == [False]
    assert all(r.decision.setpoints.grid_tie_open for r in outage)  # no shed with the tie closed
    # the critical share stays served at every node
    for node_id in NODES:
        critical = site.node(node_id).load.critical_share_pct / 100.0
        assert emulated.load_kw[node_id]() == pytest.approx(critical * average_kw[node_id]), node_id

    # The store's relay board reboots mid-outage (every output back to connected): re-driven
    # within one cycle, in the cycle that reads the reset.
    emulated.relays[STORE[0]].reboot()
    assert all(served(emulated, STORE))
    after = await next_cycles(reports, 2)
    assert not any(served(emulated, STORE))
    redriven = [r for r in after if any(f"{STORE[0]} channel" in n and "re-driven" in n for n in r.decision.notes)]
    assert len(redriven) == 1 and redriven[0].switched[STORE[0]] == len(STORE[1])
    assert daemon.cycle.state.mode is Mode.ISLANDED and not any(_all_served(emulated))

    # Home 3's ECHONET node reboots mid-outage: its switch is back at its power-on state (on)
    # while the driver still remembers "off"; 0x80 read back shows the difference, and the
    # switch is re-driven within one cycle, not taken for a disobeying switch.
    switch = emulated.echonet[HOME_3[0]]
    (node,) = [n for n in emulated.echonet_nodes.values() if n.objects.get(switch.object.eoj) is switch.object]
    node.reboot()
    assert switch.is_on
    after = await next_cycles(reports, 2)  # the cycle in flight, and one that read the reboot
    assert not switch.is_on
    assert sum(r.switched.get(HOME_3[0], 0) for r in after) == 1
    assert not [n for r in after for n in r.decision.notes if HOME_3[0] in n and "fault" in n]
    assert daemon.cycle.state.mode is Mode.ISLANDED and not any(_all_served(emulated))

    # The grid returns: tiers back in reverse order, 1, 2, then 3, one per restore step, while
    # still islanded; the tie closes after the reconnect delay, never onto shed load.
    emulated.set_grid_connected(True)
    grid_back = len(reports)
    await until(lambda: daemon.cycle.state.mode is Mode.GRID_CONNECTED, 30.0, "reconnected")
    assert all(_all_served(emulated))  # every tier was back before the tie closed
    await next_cycles(reports, 1)
    restore = reports[grid_back:]
    tie_closed = [r for r in restore if not r.decision.setpoints.grid_tie_open]
    assert tie_closed and not any(commanded_off(r, d) for r in tie_closed for d in (STORE[0], HOME_3[0], HOME_1[0]))
    on = {device_id: next(k for k, r in enumerate(restore) if not commanded_off(r, device_id))
          for device_id in (STORE[0], HOME_3[0], HOME_1[0])}
    assert on[HOME_1[0]] < on[HOME_3[0]] < on[STORE[0]]
    step_s = site.islanding.restore_step_delay_s
    at = {device_id: restore[k].at_utc for device_id, k in on.items()}
    assert (at[HOME_3[0]] - at[HOME_1[0]]).total_seconds() >= step_s
    assert (at[STORE[0]] - at[HOME_3[0]]).total_seconds() >= step_s
    for node_id in NODES:
        assert emulated.load_kw[node_id]() == pytest.approx(average_kw[node_id]), node_id
    moves = [(a, b) for _t, a, b, _n in daemon.cycle.transitions]
    assert moves == [("grid_connected", "islanded"), ("islanded", "reconnecting"),
                     ("reconnecting", "grid_connected")]
    assert all(r.healthy for r in reports)

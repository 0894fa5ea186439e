"""Switch-actuated shedding against real emulated devices: relay boards at the store and the
mall (pymodbus), their routers (secure asyncua), the real daemon with the real drivers.

Grid lost -> islanded within one cycle; the tiers are switched off in order, each confirmed by
the contactors' feedback before the next; the critical load stays served; a relay board that
reboots mid-outage is re-driven within one cycle; after reconnection the tiers come back in
reverse order.
"""

from __future__ import annotations


import pytest

from gridctl.config import load_site
from gridctl.controller.types import Mode
from tests.faults.blocks import commanded_off, fault_site, next_cycles, running_block, served, until
from tests.fixtures.relay_site import relay_site_tree, write_relay_site

STORE = ("store-relay", (0, 1))  # tier 3: shed first
MALL = ("mall-relay", (0, 1, 2))  # tier 2 in this test: shed second


def _tree():  # noqa: ANN202
    """Store and mall with relay boards, nearly empty batteries and hardly any PV: an outage
    must be met by shedding."""
    tree = relay_site_tree(relay_nodes={"store": STORE[1], "mall": MALL[1]})
    for node in tree["nodes"]:
        if node["id"] == "mall":
            node["load"]["shed_tier"] = 2
        for device in node["devices"]:
            if device["kind"] == "battery":
                device["rating"]["soc_min_pct"], device["rating"]["soc_max_pct"] = 50, 52
            if device["kind"] == "pv_inverter":
                device["rating"]["ac_kw"], device["rating"]["dc_kwp"] = 0.1, 0.1
    return tree


@pytest.fixture
async def block(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.chdir(tmp_path)
    site = load_site(write_relay_site(tmp_path, _tree(), node_ids=["store", "mall"]))
    site = fault_site(site, tmp_path, reconnect_delay_s=2, restore_step_delay_s=1.0)
    async with running_block(site, tmp_path) as (emulated, daemon, reports):
        yield site, emulated, daemon, reports


@pytest.mark.slow
async def test_outage_sheds_through_switches_in_order_and_restores(block) -> None:  # noqa: ANN001
    site, emulated, daemon, reports = block
    average_kw = {n.id: n.load.annual_kwh / 8760.0 for n in site.nodes}
    await next_cycles(reports, 2)
    assert served(emulated, STORE) == [True, True] and served(emulated, MALL) == [True] * 3
    assert not any(c.on is False for r in reports for c in r.decision.setpoints.switch_commands)

    emulated.set_grid_connected(False)
    await next_cycles(reports, 2)  # the cycle in flight may have read the grid before the loss
    assert daemon.cycle.state.mode is Mode.ISLANDED
    start = len(reports)
    await until(lambda: not any(served(emulated, STORE) + served(emulated, MALL)), 30.0, "both tiers shed")
    outage = reports[start - 2:]
    first_store = next(k for k, r in enumerate(outage) if commanded_off(r, "store-relay"))
    first_mall = next(k for k, r in enumerate(outage) if commanded_off(r, "mall-relay"))
    assert first_store < first_mall  # tier 3 before tier 2 ...
    seen = outage[first_mall].snapshot.switches["store-relay"]
    assert [s.feedback_on for s in seen[:2]] == [False, False]  # ... once its feedback confirmed
    assert emulated.load_kw["store"]() == pytest.approx(0.30 * average_kw["store"])  # critical kept
    assert emulated.load_kw["mall"]() == pytest.approx(0.10 * average_kw["mall"])

    # A relay board reboots mid-outage: every output back to connected; re-driven in one cycle.
    emulated.relays["mall-relay"].reboot()
    assert all(served(emulated, MALL))
    after = await next_cycles(reports, 2)  # the cycle in flight, and one that read the reset
    assert not any(served(emulated, MALL))
    redriven = [r for r in after if any("mall-relay channel 0" in n and "re-driven" in n for n in r.decision.notes)]
    assert len(redriven) == 1 and redriven[0].switched["mall-relay"] == 3  # written in the cycle that saw it

    # Reconnection: tier 2 (the mall) back first, then tier 3, while still islanded; the tie
    # closes after the reconnect delay and never onto shed load.
    emulated.set_grid_connected(True)
    back = len(reports)
    await until(lambda: daemon.cycle.state.mode is Mode.GRID_CONNECTED, 30.0, "reconnected")
    assert all(served(emulated, STORE) + served(emulated, MALL))
    await next_cycles(reports, 1)
    restore = reports[back:]
    tie_closed = [r for r in restore if not r.decision.setpoints.grid_tie_open]
    assert tie_closed and not any(commanded_off(r, d) for r in tie_closed for d in ("store-relay", "mall-relay"))
    on_mall = next(k for k, r in enumerate(restore) if not commanded_off(r, "mall-relay"))
    on_store = next(k for k, r in enumerate(restore) if not commanded_off(r, "store-relay"))
    assert on_mall < on_store
    assert all(r.healthy for r in reports)

"""The status document (``gridctl status --json`` and the live view) on the scripted plant.

The scripted devices report known powers (conftest): PV at half its AC rating, grid meters
and routers' grid legs 1 kW import, batteries idle at 55 %, each router's node leg 2 kW out; so every number in the
member table can be checked by hand, and a grid loss shows up in the recent transitions.
"""

from __future__ import annotations

import json

from rich.console import Console

from gridctl.cli.live_view import render, status_text

from .conftest import fast_site
from .test_cycle_table import run_cycles


async def test_members_totals_plan_and_transitions(make_daemon, plant):
    site = fast_site()
    daemon, _ledger = make_daemon(site)
    await run_cycles(daemon, 6)
    plant.grid_connected = False
    await run_cycles(daemon, 3)
    status = json.loads(json.dumps(daemon.status()))  # what the socket sends
    members = status["members"]
    assert list(members) == [n.id for n in site.nodes]
    for node in site.nodes:
        m = members[node.id]
        pv_kw = sum(0.5 * d.rating.ac_kw for d in node.pv_inverters)
        assert m["pv_kw"] == round(pv_kw, 3) and m["load_kw"] == 2.0
        assert m["battery_kw"] == 0.0 and m["soc_pct"] == (55.0 if node.batteries else None)
        assert m["grid_kw"] == 1.0  # the grid meter, else the router's grid leg: both 1 kW
        assert m["p2p_in_kw"] == 0.0  # scripted links carry nothing
        assert m["devices_ok"] == m["devices"] == len(node.devices)
        assert m["target"] is None or set(m["target"]) == {"battery_kw", "grid_kw", "pv_kw"}
    assert status["totals"]["pv_kw"] == round(sum(m["pv_kw"] for m in members.values()), 3)
    assert len(status["links"]) == len(site.links)
    assert all(link["direction"] is None for link in status["links"])
    assert [(t["from"], t["to"]) for t in status["transitions"]] == [("grid_connected", "islanded")]
    assert status["mode"] == "islanded"
    assert status["outbox_backlog"] == 0 and status["shipper"] is None  # no InfluxDB: no telemetry queued
    assert len(json.dumps(status)) < 12_000  # small enough for a socket answer per second
    for width in (80, 120):  # the live view renders at the smallest supported terminal
        console = Console(width=width, record=True, color_system=None)
        console.print(render(status))
        text = console.export_text()
        assert "ISLANDED" in text and "grid_connected→islanded" in text
        assert all(name in text for name in members) and max(map(len, text.splitlines())) <= width
    assert "transition" in status_text(status) and "home-1" in status_text(status)


async def test_health_is_degraded_with_some_devices_and_uncontrolled_with_none(make_daemon, plant):
    """0 of N devices reachable is not "healthy": the block is not being controlled."""
    site = fast_site()
    daemon, _ledger = make_daemon(site)
    ids = [d.id for _n, d in site.all_devices()]
    await run_cycles(daemon, 2)
    status = daemon.status()
    assert (status["health"], status["healthy"], status["devices_ok"]) == ("healthy", True, len(ids))
    assert daemon.status_line().startswith(f"healthy: {len(ids)}/{len(ids)} devices ok;")

    plant.failing = set(ids[:3])
    await run_cycles(daemon, 2)
    status = daemon.status()
    assert (status["health"], status["healthy"], status["devices_ok"]) == ("degraded", False, len(ids) - 3)
    assert daemon.status_line().startswith(f"degraded: {len(ids) - 3}/{len(ids)} devices ok;")
    assert "DEGRADED" in status_text(status)

    plant.failing = set(ids)
    await run_cycles(daemon, 2)
    status = daemon.status()
    assert (status["health"], status["healthy"], status["devices_ok"]) == ("uncontrolled", False, 0)
    assert status["devices_total"] == len(ids)
    assert daemon.status_line().startswith(f"uncontrolled: 0/{len(ids)} devices ok;")
    assert "UNCONTROLLED" in status_text(status)

"""``commission probe`` on a relay board: feedback agrees passively; ``--active`` (the site-level switch test) toggles each
channel and checks its contactor; a stuck contactor is one clear FAIL line."""

from __future__ import annotations

import pytest

from gridctl.commission.probe import ProbeOptions, active_switches, probe_device
from gridctl.config import load_site
from gridctl.devices import SiteDevices
from sim.emulators.site import build_site
from tests.fixtures.relay_site import write_relay_site


@pytest.fixture
async def board(tmp_path):  # noqa: ANN001, ANN201
    site = load_site(write_relay_site(tmp_path, node_ids=["store"]))
    relay = build_site(site, base_dir=tmp_path).relays["store-relay"]
    await relay.start()
    yield SiteDevices.from_config(site, node_ids=["store"]).binding("store-relay"), relay
    await relay.stop()


def _by_check(results) -> dict[str, tuple[str, str]]:  # noqa: ANN001
    return {r.check: (r.status, r.detail) for r in results}


async def test_passive_and_active_probe_pass(board) -> None:  # noqa: ANN001
    binding, relay = board
    passive = _by_check(await probe_device(binding, ProbeOptions(reread_after_s=0.0)))
    assert passive["connect"][0] == "pass" and passive["switches"][0] == "pass"
    assert passive["active"][0] == "skip"
    active = _by_check(await active_switches(binding, ProbeOptions(active=True, active_hold_s=0.2)))
    assert active["active"][0] == "pass" and "8 channel(s) toggled" in active["active"][1]
    # each channel off, on, then written back as found: 3 writes each, all connected again
    assert relay.coil_writes == 24 and relay.coils == [False] * 8


async def test_stuck_contactor_fails_in_one_line(board) -> None:  # noqa: ANN001
    binding, relay = board
    relay.faults.stuck_channels.add(3)
    active = _by_check(await active_switches(binding, ProbeOptions(active=True, active_hold_s=0.2)))
    status, detail = active["active"]
    assert status == "fail" and "\n" not in detail
    assert detail.startswith("channel 3: switched off, feedback still on")
    assert "channel 2" not in detail

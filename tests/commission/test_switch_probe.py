"""``commission probe`` on a relay board: feedback agrees passively; ``--active`` toggles each
channel and checks its contactor; a stuck contactor is one clear FAIL line."""

from __future__ import annotations

import pytest

from gridctl.commission.probe import ProbeOptions, probe_device
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
    active = _by_check(await probe_device(binding, ProbeOptions(active=True, reread_after_s=0.0)))
    assert [active[f"switch {ch}"][0] for ch in range(8)] == ["pass"] * 8
    assert relay.coil_writes == 16 and relay.coils == [False] * 8  # each off and on again


async def test_stuck_contactor_fails_in_one_line(board) -> None:  # noqa: ANN001
    binding, relay = board
    relay.faults.stuck_channels.add(3)
    active = _by_check(await probe_device(binding, ProbeOptions(active=True, reread_after_s=0.0)))
    status, detail = active["switch 3"]
    assert status == "fail" and "\n" not in detail
    assert detail == "channel 3 switched off but its feedback reads on"
    assert active["switch 2"][0] == "pass"

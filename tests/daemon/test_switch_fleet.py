"""The daemon's fleet with a real emulated relay board: switch channels are written when they
differ from what the board holds (a reset board at once) and all of them periodically for the
watchdog; a board that stops answering faults alone."""

from __future__ import annotations

import pytest

from gridctl.config import load_site
from gridctl.controller.switches import SwitchCommand
from gridctl.daemon.lifecycle.build import default_factory
from gridctl.daemon.stages.fleet import Fleet, switch_rewrite_s
from sim.emulators.site import build_site
from tests.faults.blocks import until
from tests.fixtures.relay_site import write_relay_site


@pytest.fixture
async def store(tmp_path):  # noqa: ANN001, ANN201
    site = load_site(write_relay_site(tmp_path, node_ids=["store"]))
    relay = build_site(site, base_dir=tmp_path).relays["store-relay"]  # only the board runs
    await relay.start()
    fleet = Fleet(site, default_factory)
    yield site, relay, fleet
    await fleet.close()
    await relay.stop()


def _cmds(*on: bool) -> dict[str, list[SwitchCommand]]:
    return {"store-relay": [SwitchCommand("store-relay", ch, value) for ch, value in enumerate(on)]}


async def test_writes_changes_rewrites_and_redrives(store) -> None:  # noqa: ANN001
    site, relay, fleet = store
    assert switch_rewrite_s(site, site.node("store").devices[-1]) == 10.0  # a third of 30 s
    t = 0.0

    async def cycle(*on: bool) -> int:
        readings, faults = await fleet.read_all(t)
        assert faults["store-relay"] is None and readings["store-relay"] is not None
        return (await fleet.write_switches(_cmds(*on), t))["store-relay"]

    await fleet.read_all(t)
    await until(lambda: fleet.handles["store-relay"].connected, 10.0, "relay connected")
    assert await cycle(False, True) == 2  # the first write is a full one
    assert relay.coils[:2] == [True, False]  # NC wiring: energised = disconnected
    t = 1.0
    assert await cycle(False, True) == 0  # nothing changed, re-write not due
    t = 2.0
    assert await cycle(False, False) == 1  # only the changed channel
    t = 12.0
    assert await cycle(False, False) == 2  # the watchdog re-write
    relay.reboot()
    t = 13.0
    assert await cycle(False, False) == 2  # the board holds connected: re-driven at once
    assert relay.coils[:2] == [True, True]


async def test_a_silent_board_faults_alone(store) -> None:  # noqa: ANN001
    _site, relay, fleet = store
    await fleet.read_all(0.0)
    await until(lambda: fleet.handles["store-relay"].connected, 10.0, "relay connected")
    relay.faults.no_reply = True
    readings, faults = await fleet.read_all(1.0)
    assert readings["store-relay"] is None
    assert faults["store-relay"] == "read: TransientDeviceError: store-relay: no answer reading coils 0..7"
    assert await fleet.write_switches(_cmds(False, False), 1.0) == {"store-relay": 0}
    relay.faults.no_reply = False

"""``gridctl run --emulate`` and ``gridctl emulate`` with ECHONET Lite nodes (UDP on 127.0.0.x)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from drivers.echonet.client import EchonetClient
from drivers.echonet.frame import NODE_PROFILE, Eoj
from drivers.echonet.knowledge import decode_instance_list
from gridctl.cli.emulate_launcher import EmulationError, echonet_addresses, start_emulators, stop_emulators
from gridctl.config import load_site
from tests.fixtures.emulators import REPO, write_site_config

ECHONET_SITE = REPO / "configs" / "misono-echonet.yaml"


def _home(tmp_path):  # noqa: ANN001, ANN202
    config = write_site_config(tmp_path, source=ECHONET_SITE, node_ids=["home-1"])
    return config, load_site(config)


async def _instances(host: str, port: int) -> tuple[Eoj, ...]:
    async with EchonetClient("127.0.0.1", timeout_s=1.0) as client:
        got = await client.get(host, port, NODE_PROFILE, (0xD6,))
    return decode_instance_list(got[0xD6])


@pytest.mark.integration
def test_run_emulate_waits_for_the_echonet_node_and_refuses_a_busy_one(tmp_path) -> None:
    config, site = _home(tmp_path)
    ((device_id, host, port),) = echonet_addresses(site)  # one node: the home's four objects
    assert (device_id, host) == ("home-1-pv", "127.0.0.11")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:  # a leftover node on it
        squatter.bind((host, port))
        with pytest.raises(EmulationError, match=rf"home-1-pv: port {host}:{port} is already in use"):
            start_emulators(config, site, timeout_s=5.0)
    child = start_emulators(config, site, timeout_s=90.0)
    try:
        # up means answering: the node lists PV, battery, smart meter and switch
        assert set(asyncio.run(_instances(host, port))) == {
            Eoj.of(0x0279, 1), Eoj.of(0x027D, 1), Eoj.of(0x0288, 1), Eoj.of(0x05FD, 1)}
    finally:
        stop_emulators(child)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, port))  # released with the child


def test_run_emulate_refuses_an_echonet_node_off_loopback(tmp_path) -> None:
    config, site = _home(tmp_path)
    node = site.node("home-1")
    moved = [d.model_copy(update={"protocol": d.protocol.model_copy(update={
        "echonet": d.protocol.echonet.model_copy(update={"host": "192.0.2.11"})})})
        if d.protocol.echonet is not None else d for d in node.devices]
    site = site.model_copy(update={"nodes": [node.model_copy(update={"devices": moved})]})
    with pytest.raises(EmulationError, match="home-1-pv: --emulate needs loopback devices, not 192.0.2.11"):
        start_emulators(config, site, timeout_s=5.0)

"""Router OPC UA driver against the emulated router on a real asyncua server (loopback)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
from asyncua import Client, ua

from drivers import errors
from drivers.capabilities import ReadsRouterLegs, WritesHeartbeat, WritesLegPower
from drivers.errors import PermanentDeviceError, TransientDeviceError
from drivers.opcua import infomodel as im
from drivers.opcua.router import OpcUaRouter
from drivers.profile import OpcUaEndpoint
from sim.emulators.certs import make_certificate
from sim.emulators.router_server import RouterSecurity

pytestmark = pytest.mark.integration


def endpoint_for(emulator, pki, **kw) -> OpcUaEndpoint:
    return OpcUaEndpoint(
        emulator.endpoint_url,
        certificate_path=str(pki.client.certificate_path),
        private_key_path=str(pki.client.private_key_path),
        server_certificate_path=str(pki.server.certificate_path),
        **kw,
    )


async def wait_for_leg(router: OpcUaRouter, leg: str, kw: float, timeout_s: float = 3.0) -> None:
    for _ in range(int(timeout_s / 0.05)):
        legs = await router.read_legs()
        if abs((legs[leg].power_kw or 0.0) - kw) < 0.01:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"leg {leg} never reached {kw} kW")


async def test_reads_legs_grid_state_and_identity(router_factory, pki) -> None:
    emu = await router_factory(identity=("Acme", "DGR-10", "SN-9"), time_scale=3600.0)
    router = OpcUaRouter(endpoint_for(emu, pki))
    await router.connect()
    try:
        assert isinstance(router, ReadsRouterLegs) and isinstance(router, WritesLegPower)
        assert isinstance(router, WritesHeartbeat)
        ident = await router.read_identity()
        assert (ident.manufacturer, ident.serial, ident.version) == ("Acme", "SN-9", im.MODEL_VERSION)
        assert router.leg_kinds == {"grid": "grid", "load": "node", "pv": "pv", "battery": "battery"}
        await asyncio.sleep(0.2)
        first = await router.read_snapshot()
        assert first.grid.connected is True and first.grid.frequency_hz == pytest.approx(50.0)
        legs = first.legs
        assert legs["pv"].power_kw == pytest.approx(3.0) and legs["load"].power_kw == pytest.approx(-1.5)
        assert legs["grid"].power_kw == pytest.approx(-1.5)  # the grid leg balances: PV surplus exported
        await asyncio.sleep(0.2)
        second = await router.read_snapshot()
        assert second.legs["grid"].counters.absorbed_kwh > first.legs["grid"].counters.absorbed_kwh
        assert second.legs["pv"].counters.supplied_kwh > first.legs["pv"].counters.supplied_kwh
        emu.grid_connected = False  # outage: the router islands, the grid leg carries nothing
        await wait_for_leg(router, "grid", 0.0)
        assert (await router.read_grid_state()).connected is False
    finally:
        await router.close()


async def test_typed_setpoint_write_moves_leg_and_release(router_factory, pki) -> None:
    emu = await router_factory()
    router = OpcUaRouter(endpoint_for(emu, pki))
    await router.connect()
    try:
        await router.write_leg_power_kw("battery", 2.5)  # Float node: a Double would be refused
        await router.write_heartbeat()
        await wait_for_leg(router, "battery", 2.5)
        assert (await router.read_legs())["battery"].setpoint_kw == pytest.approx(2.5)
        await router.write_leg_power_kw("battery", 9.0)  # clamped to the leg limit by the router
        await wait_for_leg(router, "battery", 4.0)
        await router.write_leg_power_kw("battery", None)
        await wait_for_leg(router, "battery", 0.0)
        with pytest.raises(PermanentDeviceError) as info:
            await router.write_leg_power_kw("no-such-leg", 1.0)
        assert info.value.reason == errors.MODEL_MISSING
        await _untyped_double_write(emu, pki)
    finally:
        await router.close()


async def _untyped_double_write(emu, pki) -> None:
    # Why the driver reads data types: a plain Python float goes out as Double.
    client = Client(emu.endpoint_url)
    await client.set_security_string(
        f"Basic256Sha256,SignAndEncrypt,{pki.client.certificate_path},{pki.client.private_key_path},"
        f"{pki.server.certificate_path}")
    client.application_uri = pki.client.application_uri
    await client.load_client_certificate(str(pki.client.certificate_path))
    await client.load_private_key(pki.client.private_key_path)
    async with client:
        ns = await client.get_namespace_index(im.NAMESPACE_URI)
        node = client.get_node(ua.NodeId(im.leg_node("battery", "Setpoint_kW"), ns))
        with pytest.raises(ua.UaStatusCodeError, match="TypeMismatch"):
            await node.write_value(1.5)


async def _anonymous_none_session_reads(url: str) -> None:
    # A client that skips its own endpoint check and opens a None channel, anonymously.
    client = Client(url, timeout=2)
    await client.connect()
    try:
        ns = await client.get_namespace_index(im.NAMESPACE_URI)
        await client.get_node(ua.NodeId(im.IDENTITY_SERIAL, ns)).read_value()
    finally:
        await client.disconnect()


async def test_server_and_client_refuse_insecure_or_unknown_parties(router_factory, pki, tmp_path: Path) -> None:
    # One server for all refusal cases: starting an asyncua server costs seconds.
    emu = await router_factory()

    with pytest.raises(Exception) as anonymous:  # noqa: PT011 - any refusal will do
        await _anonymous_none_session_reads(emu.endpoint_url)
    assert not isinstance(anonymous.value, AssertionError)

    stranger = make_certificate(tmp_path, "stranger", "urn:gridctl:client", server=False)
    untrusted = OpcUaRouter(replace(endpoint_for(emu, pki), certificate_path=str(stranger.certificate_path),
                                    private_key_path=str(stranger.private_key_path)), retries=0)
    with pytest.raises(PermanentDeviceError) as info:
        await untrusted.connect()
    assert info.value.reason == errors.CERTIFICATE_REJECTED

    for mode, policy in (("Sign", "Basic256Sha256"), ("None", "None"),
                         ("SignAndEncrypt", "Aes256_Sha256_RsaPss")):
        router = OpcUaRouter(endpoint_for(emu, pki, security_mode=mode, security_policy=policy), retries=0)
        with pytest.raises(PermanentDeviceError) as info:
            await router.connect()
        assert info.value.reason == errors.SECURITY_NOT_OFFERED, mode

    other = make_certificate(tmp_path, "other-server", "urn:other", server=True)
    pinned = OpcUaRouter(replace(endpoint_for(emu, pki), server_certificate_path=str(other.certificate_path)),
                         retries=0)
    with pytest.raises(PermanentDeviceError) as info:
        await pinned.connect()
    assert info.value.reason == errors.CERTIFICATE_REJECTED

    # and the rightful client still gets in
    good = OpcUaRouter(endpoint_for(emu, pki))
    await good.connect()
    assert (await good.read_identity()).serial == "DGR-0001"
    await good.close()


async def test_username_identity(router_factory, pki) -> None:
    security = RouterSecurity(pki.server.certificate_path, pki.server.private_key_path, pki.trusted_dir,
                              identity="username", users={"gridctl": "s3cret"})
    emu = await router_factory(security=security)
    good = OpcUaRouter(endpoint_for(emu, pki, identity="username", username="gridctl", password="s3cret"))
    await good.connect()
    assert (await good.read_identity()).serial == "DGR-0001"
    await good.close()
    bad = OpcUaRouter(endpoint_for(emu, pki, identity="username", username="gridctl", password="guess"),
                      retries=0)
    with pytest.raises(PermanentDeviceError) as info:
        await bad.connect()
    assert info.value.reason == errors.CERTIFICATE_REJECTED


@pytest.mark.slow
async def test_heartbeat_loss_releases_setpoints(router_factory, pki) -> None:
    emu = await router_factory(heartbeat_timeout_s=1)
    router = OpcUaRouter(endpoint_for(emu, pki))
    await router.connect()
    try:
        await router.write_heartbeat()
        await router.write_leg_power_kw("battery", 2.0)
        await wait_for_leg(router, "battery", 2.0)
        await wait_for_leg(router, "battery", 0.0, timeout_s=4.0)  # no heartbeat: fail-safe
        assert "fail-safe" in " ".join((await router.read_snapshot()).notes)
        await router.write_heartbeat()
        await wait_for_leg(router, "battery", 2.0)  # heartbeat back: setpoint honoured again
    finally:
        await router.close()


@pytest.mark.slow
async def test_reconnects_after_server_restart(router_factory, pki) -> None:
    emu = await router_factory()
    router = OpcUaRouter(endpoint_for(emu, pki), retries=2, backoff_s=0.1)
    await router.connect()
    try:
        await emu.stop()
        with pytest.raises(TransientDeviceError):
            await router.read_snapshot()
        await emu.start()
        assert (await router.read_snapshot()).grid.connected is True
    finally:
        await router.close()


async def test_missing_certificate_file_is_a_configuration_error(tmp_path: Path) -> None:
    router = OpcUaRouter(OpcUaEndpoint("opc.tcp://127.0.0.1:4840/x", certificate_path=str(tmp_path / "nope.der"),
                                       private_key_path=str(tmp_path / "nope.pem")), retries=0)
    with pytest.raises(PermanentDeviceError) as info:
        await router.connect()
    assert info.value.reason == errors.BAD_CONFIGURATION and "nope.der" in info.value.detail


def test_garbage_leg_values_are_dropped() -> None:
    got = {im.leg_node("pv", var): value for var, value in (
        ("Power_kW", float("nan")), ("ImportEnergy_kWh", float("inf")), ("ExportEnergy_kWh", 2.0),
        ("Limit_kW", "4.5"), ("Setpoint_kW", 1.0), ("SetpointEnabled", False))}
    leg = OpcUaRouter._leg("pv", got)  # noqa: SLF001 - the decoding step on its own
    assert leg.power_kw is None and leg.counters.supplied_kwh is None and leg.counters.absorbed_kwh == 2.0
    assert leg.limit_kw is None and leg.setpoint_kw is None

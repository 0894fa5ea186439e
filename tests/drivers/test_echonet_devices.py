"""ECHONET Lite drivers against the loopback device emulators (real UDP sockets).

Each test runs a node on 127.0.0.2 (free port) hosting plant-backed objects and talks to it
through our drivers with one shared client on 127.0.0.1. Time in the plant is a manual clock.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest

from drivers.capabilities import (
    ReadsFixedPointCounters,
    ReadsStateOfCharge,
    SwitchesLoads,
    WritesBatteryPower,
    WritesPvLimit,
)
from drivers.echonet.client import EchonetClient, acquire_shared, release_shared
from drivers.echonet.devices import (
    EchonetBattery,
    EchonetPvInverter,
    EchonetSmartMeter,
    EchonetSwitch,
)
from drivers.echonet.frame import Eoj
from drivers.echonet.quirks import EchonetQuirks
from drivers.errors import PermanentDeviceError, TransientDeviceError
from drivers.profile import EchonetEndpoint
from sim.emulators.echonet_devices import (
    EchonetBatteryObject,
    EchonetMeterObject,
    EchonetPvObject,
    EchonetSwitchObject,
    PlantClock,
    echonet_node,
)
from sim.emulators.echonet_node import EchonetNode, EmulatedObject, EmulatedProperty
from sim.emulators.sunspec_server import DevicePhysics
from sim.plant.devices import BatterySpec, BatteryState, CounterPair, PvSpec, PvState

HOST = "127.0.0.2"
#: 2026-11-29 20:29:50 JST: ten simulated seconds before a fixed metering point.
EPOCH0_S = datetime(2026, 11, 29, 11, 29, 50, tzinfo=UTC).timestamp()


class ManualClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def wall():
    return ManualClock()


@pytest.fixture
def site(wall):
    clock = PlantClock(time_scale=1.0, clock=wall, epoch0_s=EPOCH0_S)
    battery = EchonetBatteryObject(
        DevicePhysics("battery", battery_spec=BatterySpec(10.0, 3.0, 3.0),
                      battery=BatteryState(stored_kwh=5.0)), clock=clock, maker_code=0x0B)
    pv = EchonetPvObject(DevicePhysics("pv", pv_spec=PvSpec(4.0), pv=PvState(),
                                       available_pv_kw=lambda _t: 3.0), clock=clock)
    meter = EchonetMeterObject(
        DevicePhysics("meter", meter=CounterPair(), meter_power_kw=lambda _t: 36.0),
        clock=clock, coefficient=10, unit_code=0x04)  # 10 x 0.0001 kWh per count
    switch = EchonetSwitchObject(clock=clock)
    return {"battery": battery, "pv": pv, "meter": meter, "switch": switch}


@pytest.fixture
async def node(site):
    async with echonet_node(HOST, 0, *site.values(), maker_code=0x77) as server:
        yield server


@pytest.fixture
async def client():
    async with EchonetClient("127.0.0.1", timeout_s=0.2, retries=1, backoff_s=0.01) as shared:
        yield shared


def endpoint(node: EchonetNode, instance: int = 1) -> EchonetEndpoint:
    return EchonetEndpoint(HOST, node.port, instance, timeout_s=0.2)


async def connected(cls, node, client, quirks=None):
    device = cls(endpoint(node), client, quirks, name=cls.__name__)
    await device.connect()
    return device


async def test_battery_reads_supply_positive_and_writes_modes(node, client, site, wall):
    battery = await connected(EchonetBattery, node, client)
    assert isinstance(battery, WritesBatteryPower) and isinstance(battery, ReadsStateOfCharge)
    assert not battery.supports_fail_safe()
    await battery.write_battery_power_kw(2.0, revert_s=30)
    assert (site["battery"].mode, site["battery"].discharge_w) == ("discharging", 2000)
    wall.t += 360.0
    reading = await battery.read_snapshot()
    assert reading.ac_power_kw == pytest.approx(2.0)  # discharging: supply-positive
    raw = await client.get(HOST, node.port, Eoj.of(0x027D, 1), [0xD3])
    assert int.from_bytes(raw[0xD3], "big", signed=True) == -2000  # on the wire: negative
    assert reading.counters.supplied_kwh == pytest.approx(0.2)
    assert reading.counters.absorbed_kwh == 0.0
    assert reading.soc_pct == round(100 * (5.0 - 0.2 / 0.95) / 10.0)
    assert await battery.read_soc_pct() == reading.soc_pct

    await battery.write_battery_power_kw(-1.5, revert_s=30)
    assert (site["battery"].mode, site["battery"].charge_w) == ("charging", 1500)
    wall.t += 60.0
    assert (await battery.read_snapshot()).ac_power_kw == pytest.approx(-1.5)
    await battery.write_battery_power_kw(0.0, revert_s=30)
    assert await battery.read_mode() == "standby"
    await battery.write_battery_power_kw(None, revert_s=30)
    assert await battery.read_mode() == "auto"

    standby = await connected(EchonetBattery, node, client,
                              EchonetQuirks(battery_release_mode="standby"))
    await standby.write_battery_power_kw(None, revert_s=30)
    assert site["battery"].mode == "standby"


async def test_wrong_sign_device_is_corrected_by_the_quirk(node, client, site, wall):
    site["battery"].mode, site["battery"].discharge_w = "discharging", 1000
    site["meter"].physics.meter_power_kw = lambda _t: -2.5  # exporting
    node.faults.wrong_sign = True
    plain = await connected(EchonetBattery, node, client)
    wall.t += 10.0
    assert (await plain.read_snapshot()).ac_power_kw == pytest.approx(-1.0)  # fooled
    fixed = await connected(EchonetBattery, node, client, EchonetQuirks(invert_power_sign=True))
    assert (await fixed.read_snapshot()).ac_power_kw == pytest.approx(1.0)
    meter = await connected(EchonetSmartMeter, node, client,
                            EchonetQuirks(invert_power_sign=True))
    assert (await meter.read_snapshot()).ac_power_kw == pytest.approx(-2.5)
    node.faults.wrong_sign = False
    assert (await meter.read_snapshot()).ac_power_kw == pytest.approx(2.5)


async def test_pv_reads_and_curtails_in_watts_or_percent(node, client, site, wall):
    pv = await connected(EchonetPvInverter, node, client)
    assert isinstance(pv, WritesPvLimit) and pv.rated_w == 4000
    wall.t += 1200.0
    reading = await pv.read_snapshot()
    assert reading.ac_power_kw == pytest.approx(3.0)
    assert reading.counters.supplied_kwh == pytest.approx(1.0)
    await pv.write_pv_limit_kw(1.25, revert_s=60)
    assert site["pv"].limit_w == 1250
    wall.t += 10.0
    assert (await pv.read_snapshot()).ac_power_kw == pytest.approx(1.25)
    await pv.write_pv_limit_kw(None, revert_s=60)
    assert site["pv"].limit_w == 4000
    wall.t += 10.0
    assert (await pv.read_snapshot()).ac_power_kw == pytest.approx(3.0)

    by_pct = await connected(EchonetPvInverter, node, client, EchonetQuirks(pv_limit="percent"))
    await by_pct.write_pv_limit_kw(1.0, revert_s=60)
    assert site["pv"].limit_pct == 25
    wall.t += 10.0
    assert (await pv.read_snapshot()).ac_power_kw == pytest.approx(1.0)
    await by_pct.write_pv_limit_kw(None, revert_s=60)
    assert site["pv"].limit_pct == 100


async def test_meter_scales_counters_and_reads_fixed_points_in_utc(node, client, site, wall):
    meter = await connected(EchonetSmartMeter, node, client)
    assert isinstance(meter, ReadsFixedPointCounters)
    assert meter.kwh_per_count == pytest.approx(0.001)
    wall.t += 20.0  # crosses 20:30:00 JST = 11:30 UTC after 10 s at 36 kW = 0.1 kWh
    reading = await meter.read_snapshot()
    assert reading.ac_power_kw == pytest.approx(36.0)
    assert reading.counters.supplied_kwh == pytest.approx(0.2)
    assert reading.counters.absorbed_kwh == 0.0
    fixed = reading.fixed_counters
    assert fixed.at_utc == datetime(2026, 11, 29, 11, 30, tzinfo=UTC)
    assert fixed.supplied_kwh == pytest.approx(0.1) and fixed.absorbed_kwh == 0.0
    assert await meter.read_fixed_counters() == fixed
    wall.t += 1800.0
    later = await meter.read_fixed_counters()
    assert later.at_utc == datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert later.supplied_kwh == pytest.approx(0.1 + 18.0)


async def test_meter_without_fixed_counters(node, client, wall):
    node.faults.get_sna = {0xEA, 0xEB}
    refused = await connected(EchonetSmartMeter, node, client)
    reading = await refused.read_snapshot()
    assert reading.fixed_counters is None and reading.ac_power_kw == pytest.approx(36.0)
    node.faults.get_sna = set()
    told = await connected(EchonetSmartMeter, node, client, EchonetQuirks(fixed_counters=False))
    assert await told.read_fixed_counters() is None


async def test_switch_commands_feedback_and_reboot(node, client, site):
    switch = await connected(EchonetSwitch, node, client)
    assert isinstance(switch, SwitchesLoads)
    assert (await switch.read_switches())[0].feedback_on is True
    await switch.set_switch(0, False)
    state = (await switch.read_switches())[0]
    assert (state.channel, state.commanded_on, state.feedback_on) == (0, False, False)
    assert site["switch"].is_on is False
    node.reboot()  # power-on default: on
    state = (await switch.read_snapshot()).switches[0]
    assert (state.commanded_on, state.feedback_on) == (False, True)  # visible mismatch
    await switch.set_switch(0, False)  # re-driven
    assert (await switch.read_switches())[0].feedback_on is False
    site["switch"].stuck = True
    await switch.set_switch(0, True)
    state = (await switch.read_switches())[0]
    assert (state.commanded_on, state.feedback_on) == (True, False)  # did not obey
    with pytest.raises(PermanentDeviceError, match="channel 0 only, not 1"):
        await switch.set_switch(1, True)


async def test_switch_with_seti_quirk_writes_unacknowledged(node, client, site):
    switch = await connected(EchonetSwitch, node, client, EchonetQuirks(set_service="SetI"))
    await switch.set_switch(0, False)
    for _ in range(50):
        if not site["switch"].is_on:
            break
        await switch.read_switches()
    assert site["switch"].is_on is False


async def test_no_reply_is_transient_within_timeout_times_retries(node, client):
    battery = await connected(EchonetBattery, node, client, EchonetQuirks(retries=2))
    node.faults.no_reply = True
    before = node.requests_seen
    with pytest.raises(TransientDeviceError, match="within 0.2 s x 3 attempts"):
        await battery.read_snapshot()
    assert node.requests_seen - before == 3


async def test_chunked_gets_and_plausibility_notes(node, client, site, wall):
    battery = await connected(EchonetBattery, node, client,
                              EchonetQuirks(max_epcs_per_get=1, plausible_power_kw=1.0))
    await battery.write_battery_power_kw(2.0, revert_s=30)
    wall.t += 10.0
    before = node.requests_seen
    reading = await battery.read_snapshot()
    assert node.requests_seen - before == 4  # 0xD3, 0xE4, 0xA8, 0xA9 one by one
    assert reading.ac_power_kw is None
    assert reading.notes == ("power 2.000 kW beyond the plausible 1 kW, dropped",)


async def test_missing_required_epc_is_one_clear_permanent_error(client):
    bare = EmulatedObject(Eoj.of(0x0288, 1), {0x80: EmulatedProperty(lambda: b"\x30")})
    async with EchonetNode(HOST, 0, [bare]) as node:
        meter = EchonetSmartMeter(endpoint(node), client)
        with pytest.raises(PermanentDeviceError,
                           match=r"0x028801 does not implement EPC 0xE7, 0xE0, 0xE1$"):
            await meter.connect()


async def test_device_answering_only_to_3610_needs_the_quirk_and_a_3610_client(node):
    node.faults.reply_port = 3610
    async with EchonetClient("127.12.3.98", timeout_s=0.2, retries=0) as ephemeral:
        plain = EchonetSwitch(endpoint(node), ephemeral)
        with pytest.raises(TransientDeviceError):
            await plain.connect()
        quirky = EchonetSwitch(endpoint(node), ephemeral, EchonetQuirks(replies_to_3610=True))
        with pytest.raises(PermanentDeviceError, match="bound to port"):
            await quirky.connect()
    # a loopback address of its own so that no other test's 3610 socket is in the way
    async with EchonetClient("127.12.3.99", 3610, timeout_s=0.2, retries=0) as at_3610:
        quirky = EchonetSwitch(endpoint(node), at_3610, EchonetQuirks(replies_to_3610=True))
        await quirky.connect()
        assert (await quirky.read_switches())[0].feedback_on is True


async def test_drivers_without_a_client_share_one_socket_closed_by_the_last(node):
    switch, battery = EchonetSwitch(endpoint(node)), EchonetBattery(endpoint(node))
    await switch.connect()
    await battery.connect()
    shared = switch.client
    assert shared is battery.client and shared.is_open  # one UDP socket for both
    await switch.close()
    assert shared.is_open and (await battery.read_snapshot()).soc_pct is not None
    await battery.close()
    assert not shared.is_open and switch.client is None
    await switch.connect()  # a reconnect takes a fresh shared socket
    assert switch.client.is_open and (await switch.read_switches())[0].feedback_on is True
    await switch.close()


async def test_one_port_3610_socket_serves_every_device_that_needs_it():
    """Devices with the replies_to_3610 quirk all need the controller's port 3610: a second
    socket could not bind it, so they share one (each acquire matched by a release)."""
    first = await acquire_shared(3610, "127.12.3.98")
    second = await acquire_shared(3610, "127.12.3.98")
    assert first is second and first.local_port == 3610
    await release_shared(first)
    assert second.is_open
    await release_shared(second)
    assert not first.is_open


async def test_garbage_from_the_device_address_does_not_break_a_driver(node, client):
    switch = await connected(EchonetSwitch, node, client)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    try:
        for payload in (b"\x10\x81", bytes(300), b"\x10\x81\x00\x01\x05\xfd\x01\x05\xff\x01\x72"):
            sock.sendto(payload, ("127.0.0.1", client.local_port))
    finally:
        sock.close()
    assert (await switch.read_switches())[0].feedback_on is True


async def test_reboot_returns_every_object_to_power_on_defaults(node, client, site, wall):
    battery = await connected(EchonetBattery, node, client)
    pv = await connected(EchonetPvInverter, node, client)
    await battery.write_battery_power_kw(-1.0, revert_s=30)
    await pv.write_pv_limit_kw(0.5, revert_s=30)
    node.reboot()
    assert await battery.read_mode() == "auto"
    wall.t += 10.0
    assert (await pv.read_snapshot()).ac_power_kw == pytest.approx(3.0)  # limit gone


async def test_meter_history_of_a_chosen_day(node, client, wall):
    from drivers.echonet.knowledge import decode_value

    wall.t += 20.0  # 20:30 JST slot (index 41) frozen with 100 counts
    meter = Eoj.of(0x0288, 1)
    got = await client.get(HOST, node.port, meter, [0xE2])
    day, slots = decode_value(0x0288, 0xE2, got[0xE2])
    assert day == 0 and slots[41] == 100 and slots[40] == 0 and slots[42] is None
    await client.set(HOST, node.port, meter, {0xE5: b"\x01"})
    got = await client.get(HOST, node.port, meter, [0xE2])
    day, slots = decode_value(0x0288, 0xE2, got[0xE2])
    assert day == 1 and set(slots) == {None}


async def test_malformed_and_implausible_values_become_notes(client):
    garbage = EmulatedObject(Eoj.of(0x027D, 1), {
        0x80: EmulatedProperty(lambda: b"\x30"),
        0xDA: EmulatedProperty(lambda: b"\x46"),
        0xD3: EmulatedProperty(lambda: b"\x01\x00"),  # 2 bytes instead of 4
        0xE4: EmulatedProperty(lambda: b"\x96"),  # 150 %
        0xA9: EmulatedProperty(lambda: bytes.fromhex("7FFFFFFE")),
    })
    async with EchonetNode(HOST, 0, [garbage]) as node:
        battery = EchonetBattery(endpoint(node), client)
        await battery.connect()
        reading = await battery.read_snapshot()
    assert (reading.ac_power_kw, reading.soc_pct) == (None, None)
    assert reading.counters.supplied_kwh is None
    assert reading.notes == (
        "class 0x027D EPC 0xD3 (instantaneous_charge_discharge_power): 2 bytes, expected 4, dropped",
        "EPC 0xA9 (ac_cumulative_discharged): raw value 2147483646 above the specified maximum "
        "999999999, dropped",
        "SoC 150 % outside 0-100, dropped",
    )

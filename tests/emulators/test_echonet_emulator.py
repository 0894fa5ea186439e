"""The ECHONET Lite emulators checked with an independent client: pychonet (Home Assistant's).

pychonet always sends to port 3610, so each emulated node listens on port 3610 of its own
loopback address (127.12.3.1-4; addresses no other test uses) and pychonet's socket is bound
to 127.12.3.100 on an ephemeral port. Every EPC our drivers use is read (and, where the
driver writes it, written) through pychonet and compared with the plant state and with what
our driver reads; pychonet's own decoders (StorageBattery, LowVoltageSmartElectricEnergyMeter,
HomeSolarPower) decode the values, independently of classes.yaml.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from pychonet.echonetapiclient import ECHONETAPIClient
from pychonet.EchonetInstance import EchonetInstance
from pychonet.HomeSolarPower import HomeSolarPower
from pychonet.lib.functions import buildEchonetMsg, decodeEchonetMsg
from pychonet.lib.udpserver import UDPServer
from pychonet.LowVoltageSmartElectricEnergyMeter import LowVoltageSmartElectricEnergyMeter, _0288EA
from pychonet.StorageBattery import StorageBattery

from drivers.echonet.client import EchonetClient
from drivers.echonet.devices import EchonetBattery, EchonetPvInverter, EchonetSmartMeter, EchonetSwitch
from drivers.echonet.frame import CONTROLLER, Eoj, Esv, Frame, Property, decode, encode
from drivers.profile import EchonetEndpoint
from sim.emulators.echonet_devices import (
    EchonetBatteryObject,
    EchonetMeterObject,
    EchonetPvObject,
    EchonetSwitchObject,
    PlantClock,
    echonet_node,
)
from sim.emulators.sunspec_server import DevicePhysics
from sim.plant.devices import BatterySpec, BatteryState, CounterPair, PvSpec, PvState

ADDRESSES = {"battery": "127.12.3.1", "pv": "127.12.3.2", "meter": "127.12.3.3",
             "switch": "127.12.3.4"}
PYCHONET_HOST = "127.12.3.100"
#: 2026-11-29 20:29:50 JST
EPOCH0_S = datetime(2026, 11, 29, 11, 29, 50, tzinfo=UTC).timestamp()


class ManualClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def plant():
    wall = ManualClock()
    clock = PlantClock(clock=wall, epoch0_s=EPOCH0_S)
    objects = {
        "battery": EchonetBatteryObject(
            DevicePhysics("battery", battery_spec=BatterySpec(10.0, 3.0, 3.0),
                          battery=BatteryState(stored_kwh=5.0)), clock=clock),
        "pv": EchonetPvObject(DevicePhysics("pv", pv_spec=PvSpec(4.5), pv=PvState(),
                                            available_pv_kw=lambda _t: 3.2), clock=clock),
        "meter": EchonetMeterObject(
            DevicePhysics("meter", meter=CounterPair(), meter_power_kw=lambda _t: -1.8),
            clock=clock, coefficient=1, unit_code=0x02),
        "switch": EchonetSwitchObject(clock=clock),
    }
    nodes = [echonet_node(ADDRESSES[k], 3610, o, maker_code=0x77) for k, o in objects.items()]
    for node in nodes:
        await node.start()
    try:
        yield wall, objects, dict(zip(objects, nodes))
    finally:
        for node in nodes:
            await node.stop()


@pytest.fixture
async def pychonet():
    server = UDPServer(local_ip=PYCHONET_HOST)
    server.run(PYCHONET_HOST, 0, loop=asyncio.get_running_loop())
    api = ECHONETAPIClient(server)
    try:
        yield api
    finally:
        server.close()
        await asyncio.sleep(0)


@pytest.fixture
async def client():
    async with EchonetClient("127.12.3.101", timeout_s=0.5, retries=1) as ours:
        yield ours


async def _discovered(api, kind: str, class_code: int) -> None:
    host = ADDRESSES[kind]
    assert await api.discover(host)
    instances = api._state[host]["instances"]
    assert 1 in instances[class_code >> 8][class_code & 0xFF]
    assert await api.getAllPropertyMaps(host, class_code >> 8, class_code & 0xFF, 1)


def _ep(kind: str) -> EchonetEndpoint:
    return EchonetEndpoint(ADDRESSES[kind], 3610, 1, timeout_s=0.5)


async def test_battery_through_pychonet(plant, pychonet, client):
    wall, objects, _ = plant
    await _discovered(pychonet, "battery", 0x027D)
    battery = StorageBattery(ADDRESSES["battery"], pychonet)
    assert pychonet._state[ADDRESSES["battery"]]["uid"].startswith("0000770000")
    # pychonet writes the mode and power settings our driver writes
    assert await battery.setMessage(0xEC, 1500, 4)
    assert await battery.setMessage(0xDA, 0x43)
    assert (objects["battery"].mode, objects["battery"].discharge_w) == ("discharging", 1500)
    wall.t += 720.0
    values = await battery.update([0x80, 0xD3, 0xE4, 0xDA, 0xA8, 0xA9, 0xEB, 0xEC])
    assert values[0xD3] == -1500  # charging-positive on the wire: discharging is negative
    assert values[0xDA] == "discharging"
    assert values[0xEC] == 1500 and values[0xEB] == 0
    assert values[0xA9] == 300 and values[0xA8] == 0  # 0.001 kWh units: 0.3 kWh discharged
    soc = objects["battery"].physics.battery.soc_pct(objects["battery"].physics.battery_spec)
    assert values[0xE4] == round(soc)
    # our driver reads the same state, supply-positive
    ours = EchonetBattery(_ep("battery"), client)
    await ours.connect()
    reading = await ours.read_snapshot()
    assert reading.ac_power_kw == pytest.approx(1.5)
    assert reading.counters.supplied_kwh == pytest.approx(0.3)
    assert reading.soc_pct == values[0xE4]
    # our driver writes, pychonet reads
    await ours.write_battery_power_kw(-2.0, revert_s=30)
    values = await battery.update([0xDA, 0xEB])
    assert values == {0xDA: "charging", 0xEB: 2000}
    await ours.write_battery_power_kw(None, revert_s=30)
    assert await battery.update(0xDA) == "auto"


async def test_pv_through_pychonet(plant, pychonet, client):
    wall, objects, _ = plant
    await _discovered(pychonet, "pv", 0x0279)
    pv = HomeSolarPower(ADDRESSES["pv"], pychonet)
    wall.t += 1800.0
    values = await pv.update([0xE0, 0xE1, 0xE8, 0xA0, 0xA1])
    assert values[0xE0] == 3200 and values[0xE8] == 4500
    assert values[0xE1] == 1600  # 1.6 kWh in 0.001 kWh
    assert (values[0xA0], values[0xA1]) == (100, 0xFFFD)
    assert await pv.setMessage(0xA1, 2000, 2)
    wall.t += 10.0
    assert await pv.update(0xE0) == 2000
    ours = EchonetPvInverter(_ep("pv"), client)
    await ours.connect()
    assert (await ours.read_snapshot()).ac_power_kw == pytest.approx(2.0)
    await ours.write_pv_limit_kw(0.9, revert_s=60)
    assert await pv.update(0xA1) == 900
    assert await pv.setMessage(0xA0, 50, 1)
    assert objects["pv"].limit_pct == 50


async def test_meter_through_pychonet(plant, pychonet, client):
    wall, objects, _ = plant
    await _discovered(pychonet, "meter", 0x0288)
    meter = LowVoltageSmartElectricEnergyMeter(ADDRESSES["meter"], pychonet)
    wall.t += 20.0  # crosses 20:30 JST: 10 s of 1.8 kW export = 0.005 kWh
    wall.t += 1800.0  # and 21:00 JST after 1800 s more: 0.905 kWh
    values = await meter.update([0xD3, 0xE1, 0xE0, 0xE3, 0xE7])
    assert values[0xE7] == -1800  # reverse (export) is negative on the wire
    assert values[0xE1] == 0.01 and values[0xD3] == 1
    assert values[0xE0] == 0 and values[0xE3] == 91  # 0.91 kWh in 0.01 kWh
    host = ADDRESSES["meter"]
    instance = EchonetInstance(host, 0x02, 0x88, 0x01, pychonet)
    reverse = _0288EA(await instance.getMessage(0xEB))
    assert reverse == {"time": "2026-11-29T21:00:00", "culmative_value": 90}
    ours = EchonetSmartMeter(_ep("meter"), client)
    await ours.connect()
    reading = await ours.read_snapshot()
    assert reading.ac_power_kw == pytest.approx(-1.8)
    assert reading.counters.absorbed_kwh == pytest.approx(0.91)
    assert reading.fixed_counters.at_utc == datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert reading.fixed_counters.absorbed_kwh == pytest.approx(0.90)
    # the history day: written by pychonet, read back by both
    assert await instance.setMessage(0xE5, 1, 1)
    assert objects["meter"].history_day == 1
    history = await instance.getMessage(0xE4)
    assert len(history) == 194 and history[:2] == b"\x00\x01"


async def test_switch_through_pychonet(plant, pychonet, client):
    _, objects, _ = plant
    await _discovered(pychonet, "switch", 0x05FD)
    switch = EchonetInstance(ADDRESSES["switch"], 0x05, 0xFD, 0x01, pychonet)
    assert await switch.getMessage(0x80) == b"\x30"
    assert await switch.setMessage(0x80, 0x31)
    assert objects["switch"].is_on is False
    ours = EchonetSwitch(_ep("switch"), client)
    await ours.connect()
    assert (await ours.read_switches())[0].feedback_on is False
    await ours.set_switch(0, True)
    assert await switch.getMessage(0x80) == b"\x30"


async def test_our_unicast_discovery_of_3610_nodes(plant, client):
    nodes = await client.discover(0.5, multicast=False, hosts=list(ADDRESSES.values()))
    assert [(n.host, n.port) for n in nodes] == sorted((a, 3610) for a in ADDRESSES.values())
    classes = {n.host: n.objects[0].eoj.class_code for n in nodes}
    assert classes == {ADDRESSES["battery"]: 0x027D, ADDRESSES["pv"]: 0x0279,
                       ADDRESSES["meter"]: 0x0288, ADDRESSES["switch"]: 0x05FD}
    meter = next(n for n in nodes if n.host == ADDRESSES["meter"]).objects[0]
    assert {0xE7, 0xEA, 0xEB, 0xE0, 0xE3, 0xD3, 0xE1} <= meter.get_map
    assert 0xE5 in meter.set_map and {0xEA, 0xEB} <= meter.inf_map


def test_frames_agree_with_pychonets_codec():
    ours = Frame(0x1234, CONTROLLER, Eoj.of(0x027D, 1), Esv.SETC,
                 (Property(0xDA, b"\x42"), Property(0xEB, (2000).to_bytes(4, "big"))))
    theirs = decodeEchonetMsg(encode(ours))
    assert theirs["TID"] == 0x1234 and theirs["ESV"] == 0x61
    assert (theirs["DEOJGC"], theirs["DEOJCC"], theirs["DEOJCI"]) == (0x02, 0x7D, 0x01)
    assert [(o["EPC"], o["EDT"]) for o in theirs["OPC"]] == [
        (0xDA, b"\x42"), (0xEB, (2000).to_bytes(4, "big"))]
    built = buildEchonetMsg({"TID": 7, "DEOJGC": 0x02, "DEOJCC": 0x88, "DEOJCI": 1,
                             "ESV": 0x62, "OPC": [{"EPC": 0xE7}, {"EPC": 0xEA}]})
    frame = decode(bytes(built))
    assert frame.tid == 7 and frame.deoj == Eoj.of(0x0288, 1) and frame.esv == Esv.GET
    assert [p.epc for p in frame.properties] == [0xE7, 0xEA]

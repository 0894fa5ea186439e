"""The ECHONET Lite site (configs/misono-echonet.yaml): config mapped onto the ECHONET drivers,
and every device of two homes read through them from the emulated site on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.echonet.devices import EchonetBattery, EchonetPvInverter, EchonetSmartMeter, EchonetSwitch
from drivers.echonet.frame import Eoj
from drivers.relay.modbus_board import ModbusRelayBoard
from gridctl.config import load_site
from gridctl.devices import SiteDevices, build_binding
from sim.emulators.site import build_site
from tests.fixtures.emulators import REPO, write_site_config

ECHONET_SITE = REPO / "configs" / "misono-echonet.yaml"


def test_echonet_devices_map_to_echonet_drivers_on_one_shared_client() -> None:
    site = load_site(ECHONET_SITE)
    devices = SiteDevices.from_config(site)
    drivers = {d: b.driver for d, b in devices.bindings.items()}
    assert isinstance(drivers["home-1-pv"], EchonetPvInverter)
    assert isinstance(drivers["home-1-battery"], EchonetBattery)
    assert isinstance(drivers["home-1-meter"], EchonetSmartMeter)
    assert isinstance(drivers["home-1-switch"], EchonetSwitch)
    assert isinstance(drivers["store-relays"], ModbusRelayBoard)
    echonet = [drv for drv in drivers.values() if hasattr(drv, "eoj")]
    assert len(echonet) == 5 * 4 - 1  # home 5 has no battery
    assert all(drv.client is devices.echonet_client for drv in echonet)  # one UDP socket
    battery = drivers["home-3-battery"]
    assert (battery.endpoint.host, battery.endpoint.port, battery.endpoint.instance) == ("127.0.0.13", 3610, 1)
    assert battery.eoj == Eoj.of(0x027D, 1)
    # plausibility bound as for SunSpec: twice the rating (3 kW battery), the meter's from the grid limit
    assert battery.quirks.plausible_power_kw == pytest.approx(6.0)
    assert drivers["home-3-meter"].quirks.plausible_power_kw == pytest.approx(10.0)


def test_profile_quirks_and_class_reach_the_driver() -> None:
    site = load_site(ECHONET_SITE)
    node = site.node("home-1")
    battery = next(d for d in node.devices if d.id == "home-1-battery")
    quirky = battery.model_copy(update={"profile": "example-echonet-battery-discharge-positive"})
    driver = build_binding(site, node, quirky).driver
    q = driver.quirks
    assert (q.invert_power_sign, q.set_service, q.replies_to_3610, q.battery_release_mode) == \
        (True, "SetI", True, "standby")
    assert q.inter_request_delay_s == pytest.approx(0.1)
    # an appliance switched through 0x80: the object is the profile's class, not 0x05FD
    profiles = {**site.device_profiles, "aircon-switch": site.device_profiles["generic-echonet-switch"].model_copy(
        update={"id": "aircon-switch", "echonet": site.device_profiles["generic-echonet-switch"].echonet.model_copy(
            update={"class_code": 0x0130})})}
    site2 = site.model_copy(update={"device_profiles": profiles})
    switch = next(d for d in node.devices if d.id == "home-1-switch").model_copy(update={"profile": "aircon-switch"})
    assert build_binding(site2, node, switch).driver.eoj == Eoj.of(0x0130, 1)


@pytest.mark.integration
async def test_every_echonet_device_of_two_homes_reads_from_the_emulated_site(tmp_path: Path) -> None:
    config = write_site_config(tmp_path, source=ECHONET_SITE, node_ids=["home-1", "home-2"])
    site = load_site(config)
    emulated = build_site(site, base_dir=tmp_path)
    await emulated.start()
    devices = SiteDevices.from_config(site, base_dir=tmp_path)
    try:
        assert all(e is None for e in (await devices.connect_all()).values())
        readings = await devices.poll()
    finally:
        await devices.close()
        await emulated.stop()
    for home in ("home-1", "home-2"):
        pv, battery, meter, switch = (readings[f"{home}-{k}"] for k in ("pv", "battery", "meter", "switch"))
        assert pv.ac_power_kw is not None and pv.ac_power_kw >= 0 and pv.counters.supplied_kwh > 0
        assert battery.soc_pct == pytest.approx(52.0, abs=1.0) and battery.ac_power_kw == pytest.approx(0.0)
        load_kw = site.node(home).load.annual_kwh / 8760.0
        # the node balance: grid = load - pv - battery (no link flow yet)
        assert meter.ac_power_kw == pytest.approx(load_kw - pv.ac_power_kw, abs=0.05)
        assert meter.fixed_counters is not None and meter.fixed_counters.at_utc.minute in (0, 30)
        assert switch.switches[0].feedback_on is True

"""Probe failures with the right message, on faulty emulated devices (in-process servers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridctl.commission.checks import FAIL, PASS
from gridctl.commission.probe import ProbeOptions, probe_all
from gridctl.config import load_site
from gridctl.devices import SiteDevices
from sim.emulators.site import build_site
from tests.fixtures.emulators import write_site_config

pytestmark = pytest.mark.integration

FAST = ProbeOptions(reread_after_s=0.2, active_hold_s=0.6)


def by_check(results, device_id: str) -> dict[str, tuple[str, str]]:
    return {r.check: (r.status, r.detail) for r in results if r.device_id == device_id}


@pytest.fixture
async def home1(tmp_path: Path):
    """Home 1's SunSpec devices (no router) emulated in-process, expecting serial PV-42 for the PV."""
    config = write_site_config(tmp_path, node_ids=["home-1"], serials={"home-1-pv": "PV-42"})
    site = load_site(config)
    emulated = build_site(site, base_dir=tmp_path)
    emulated.routers.clear()  # SunSpec only: keeps these tests fast
    # steady sunshine, whatever the time of day the tests run
    emulated.sunspec["home-1-pv"].physics.available_pv_kw = lambda _t: 3.0
    await emulated.start()
    emulated.sunspec["home-1-pv"].identity = type(emulated.sunspec["home-1-pv"].identity)(
        manufacturer="Generic SunSpec", model="generic-sunspec-inverter", serial="PV-42")
    devices = SiteDevices.from_config(site, base_dir=tmp_path)
    del devices.bindings["home-1-dgr"]
    yield emulated, devices
    await emulated.stop()


async def test_healthy_devices_pass(home1) -> None:
    _emulated, devices = home1
    results = await probe_all(list(devices.bindings.values()), ProbeOptions(active=True, reread_after_s=0.2,
                                                                             active_hold_s=0.6))
    assert [r for r in results if r.status == FAIL] == []
    assert by_check(results, "home-1-battery")["active"][0] == PASS
    assert by_check(results, "home-1-pv")["active"][0] == PASS
    assert by_check(results, "home-1-pv")["identity"][0] == PASS


async def test_flipped_pv_sign_fails_with_sign_message(home1) -> None:
    emulated, devices = home1
    emulated.sunspec["home-1-pv"].faults.flip_sign = True
    results = await probe_all([devices.binding("home-1-pv")], FAST)
    status, detail = by_check(results, "home-1-pv")["sign"]
    assert status == FAIL and "negative" in detail and "signs.power" in detail


async def test_flipped_battery_sign_fails_the_active_test(home1) -> None:
    emulated, devices = home1
    emulated.sunspec["home-1-battery"].faults.flip_sign = True  # reports power with the wrong sign
    results = await probe_all([devices.binding("home-1-battery")], ProbeOptions(active=True, reread_after_s=0.2,
                                                                                active_hold_s=0.6))
    status, detail = by_check(results, "home-1-battery")["active"]
    assert status == FAIL and "sign flipped" in detail


async def test_miswired_battery_is_caught_by_the_grid_meter(home1) -> None:
    # The battery obeys and reports consistently, but physically does the opposite: only the
    # node's grid meter can tell.
    emulated, devices = home1
    emulated.sunspec["home-1-battery"].physics.native_sign = -1
    results = await probe_all([devices.binding("home-1-battery"), devices.binding("home-1-meter")],
                              ProbeOptions(active=True, reread_after_s=0.2, active_hold_s=0.6))
    status, detail = by_check(results, "home-1-battery")["active"]
    assert status == FAIL and "grid meter moved" in detail


async def test_wrong_serial_fails_identity(home1) -> None:
    emulated, devices = home1
    emulated.sunspec["home-1-pv"].faults.serial = "PV-99"
    results = await probe_all([devices.binding("home-1-pv")], FAST)
    status, detail = by_check(results, "home-1-pv")["identity"]
    assert status == FAIL and "'PV-99'" in detail and "'PV-42'" in detail


async def test_unreachable_and_broken_devices_give_clear_lines(home1) -> None:
    emulated, devices = home1
    await emulated.sunspec["home-1-meter"].stop()
    emulated.sunspec["home-1-battery"].faults.garbage = True
    results = await probe_all([devices.binding("home-1-meter"), devices.binding("home-1-battery")], FAST)
    status, detail = by_check(results, "home-1-meter")["connect"]
    assert status == FAIL and detail.startswith("connection refused")
    status, detail = by_check(results, "home-1-battery")["values"]
    assert status == FAIL and "scale factor" in detail


async def test_counter_going_backwards_fails(home1) -> None:
    emulated, devices = home1
    emulated.sunspec["home-1-meter"].faults.counter_step_kwh = -1.0  # a counter that runs backwards
    results = await probe_all([devices.binding("home-1-meter")], FAST)
    status, detail = by_check(results, "home-1-meter")["counters"]
    assert status == FAIL and "backwards" in detail


async def test_missing_model_fails_models_check(tmp_path: Path) -> None:
    config = write_site_config(tmp_path, node_ids=["home-1"])
    site = load_site(config)
    emulated = build_site(site, base_dir=tmp_path)
    emulated.routers.clear()
    pv = emulated.sunspec["home-1-pv"]
    # the same device without model 123 (no PV limit control)
    emulated.sunspec["home-1-pv"] = type(pv)(pv.physics, (1, 101, 120), pv.identity, port=pv.port)
    await emulated.start()
    try:
        devices = SiteDevices.from_config(site, base_dir=tmp_path)
        results = await probe_all([devices.binding("home-1-pv")], FAST)
        checks = by_check(results, "home-1-pv")
        assert checks["models"][0] == FAIL and "[123]" in checks["models"][1]
        assert checks["fail-safe"][0] == FAIL
    finally:
        await emulated.stop()


async def test_flipped_meter_sign_fails_the_node_balance(home1) -> None:
    emulated, devices = home1
    meter = emulated.sunspec["home-1-meter"]
    # a night-time node: no PV, so the meter imports the whole load
    emulated.sunspec["home-1-pv"].physics.available_pv_kw = lambda _t: 0.0
    healthy = await probe_all([devices.binding("home-1-pv"), devices.binding("home-1-battery"),
                               devices.binding("home-1-meter")], FAST)
    assert by_check(healthy, "home-1-meter")["sign"][0] == PASS
    meter.faults.flip_sign = True
    flipped = await probe_all([devices.binding("home-1-pv"), devices.binding("home-1-battery"),
                               devices.binding("home-1-meter")], FAST)
    status, detail = by_check(flipped, "home-1-meter")["sign"]
    assert status == FAIL and "implied load" in detail


async def test_active_pv_limit_test(sunspec_factory) -> None:
    from gridctl.commission.probe import active_pv_test
    from gridctl.devices import DeviceBinding
    from drivers.profile import ModbusEndpoint
    from drivers.sunspec.devices import SunSpecPvInverter

    emu = await sunspec_factory("pv_inverter", physics={"available_kw": 3.0})
    driver = SunSpecPvInverter(ModbusEndpoint("127.0.0.1", emu.port))
    binding = DeviceBinding("n", "pv", "pv_inverter", driver, None, None, 60.0)
    results = await active_pv_test(binding, ProbeOptions(active=True, active_hold_s=0.3))
    assert [(r.check, r.status) for r in results] == [("active", PASS)]
    assert "1.50 kW limit" in results[0].detail
    assert emu.physics.setpoint.value is None  # limit released


async def test_probe_passes_at_night(tmp_path: Path) -> None:
    config = write_site_config(tmp_path, node_ids=["home-1"])
    site = load_site(config)
    midnight_jst = 15 * 3600.0  # 1970-01-01 15:00 UTC
    emulated = build_site(site, base_dir=tmp_path, epoch0_s=midnight_jst)
    emulated.routers.clear()
    await emulated.start()
    try:
        devices = SiteDevices.from_config(site, base_dir=tmp_path)
        del devices.bindings["home-1-dgr"]
        results = await probe_all(list(devices.bindings.values()),
                                  ProbeOptions(active=True, reread_after_s=0.2, active_hold_s=0.6))
        assert [r for r in results if r.status == FAIL] == []
        assert by_check(results, "home-1-pv")["active"][0] == "skip"
        assert by_check(results, "home-1-meter")["sign"][0] == PASS
    finally:
        await emulated.stop()


async def test_modbus_exception_at_probe_is_named_not_taken_for_a_missing_marker(home1) -> None:
    emulated, devices = home1
    emulated.sunspec["home-1-meter"].faults.exception_code = 4
    results = await probe_all([devices.binding("home-1-meter")], FAST)
    status, detail = by_check(results, "home-1-meter")["connect"]
    assert status == FAIL
    assert detail == "device answered Modbus exception 4 (server device failure) at register 40000"

"""Emulated SunSpec devices validated by pysunspec2's independent client (its own sockets)."""

from __future__ import annotations

import asyncio

import pytest
from sunspec2.modbus.client import SunSpecModbusClientDeviceTCP

pytestmark = pytest.mark.integration


def scan(port: int, unit_id: int = 1) -> SunSpecModbusClientDeviceTCP:
    device = SunSpecModbusClientDeviceTCP(slave_id=unit_id, ipaddr="127.0.0.1", ipport=port, timeout=2)
    device.scan()
    return device


def model_ids(device: SunSpecModbusClientDeviceTCP) -> list[int]:
    return sorted(k for k in device.models if isinstance(k, int))


@pytest.mark.parametrize(
    "kind,models",
    [
        ("pv_inverter", (1, 101, 120, 123)),
        ("pv_inverter", (1, 103, 120, 701, 704)),
        ("battery", (1, 120, 701, 704, 713, 802, 124)),
        ("meter", (1, 201)),
        ("meter", (1, 203)),
    ],
)
async def test_pysunspec2_scans_and_decodes(sunspec_factory, kind: str, models: tuple[int, ...]) -> None:
    emu = await sunspec_factory(kind, models=models, serial="SN-777")
    device = await asyncio.to_thread(scan, emu.port)
    try:
        assert model_ids(device) == sorted(models)
        common = device.models[1][0]
        assert common.SN.cvalue == "SN-777" and common.Mn.cvalue == "gridctl"
        for model_id in models:
            model = device.models[model_id][0]
            assert model.model_len == model.model_def["group"]["points"][1].get("value", model.model_len)
    finally:
        device.disconnect()


async def test_pysunspec2_sees_physics(sunspec_factory) -> None:
    emu = await sunspec_factory("battery", physics={"soc_pct": 40.0})
    device = await asyncio.to_thread(scan, emu.port)
    try:
        battery = device.models[802][0]
        assert battery.SoC.cvalue == pytest.approx(40.0, abs=0.1)
        assert battery.WHRtg.cvalue == pytest.approx(9800.0)
        assert battery.W.cvalue == pytest.approx(0.0)
        meas = device.models[701][0]
        assert meas.TotWhInj.cvalue == pytest.approx(90000.0)  # 90 kWh discharged so far
        assert meas.Hz.cvalue == pytest.approx(50.0)
        assert meas.VA.cvalue is None  # not implemented stays None for an independent reader too
    finally:
        device.disconnect()


async def test_pysunspec2_write_drives_the_battery(sunspec_factory) -> None:
    emu = await sunspec_factory("battery", time_scale=3600.0)

    def command() -> None:
        device = scan(emu.port)
        try:
            ctl = device.models[704][0]
            ctl.WSetEna.value = 1
            ctl.WSetMod.value = 1
            ctl.WSet.cvalue = -3000  # charge 3 kW, written through pysunspec2's own encoder
            ctl.write()
        finally:
            device.disconnect()

    before = emu.physics.battery.stored_kwh
    await asyncio.to_thread(command)
    await asyncio.sleep(0.3)
    device = await asyncio.to_thread(scan, emu.port)
    try:
        assert device.models[802][0].W.cvalue == pytest.approx(-3000.0)
        assert emu.physics.battery.stored_kwh > before
        assert device.models[701][0].TotWhAbs.cvalue > 100000.0  # charge counter grew from 100 kWh
    finally:
        device.disconnect()


async def test_writes_to_read_only_points_are_refused(sunspec_factory) -> None:
    emu = await sunspec_factory("meter")

    def write_serial() -> str:
        device = scan(emu.port)
        try:
            common = device.models[1][0]
            common.SN.value = "HACKED"
            try:
                common.SN.write()
            except Exception as exc:  # noqa: BLE001 - pysunspec2 raises its own types
                return type(exc).__name__
            return "accepted"
        finally:
            device.disconnect()

    assert await asyncio.to_thread(write_serial) != "accepted"

"""SunSpec Modbus driver against emulated devices on real pymodbus servers (loopback)."""

from __future__ import annotations

import asyncio

import pytest

from drivers import errors
from drivers.capabilities import ReadsStateOfCharge, WritesBatteryPower, WritesHeartbeat, WritesPvLimit
from drivers.errors import PermanentDeviceError, TransientDeviceError
from drivers.profile import DeviceQuirks, ModbusEndpoint
from drivers.sunspec.devices import SunSpecBattery, SunSpecMeter, SunSpecPvInverter
from tests.fixtures.emulators import free_port

pytestmark = pytest.mark.integration


def endpoint(emulator, **kw) -> ModbusEndpoint:
    return ModbusEndpoint("127.0.0.1", emulator.port, unit_id=kw.pop("unit_id", emulator.unit_id),
                          timeout_s=kw.pop("timeout_s", 1.0), **kw)


async def wait_until(predicate, timeout_s: float = 3.0) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if await predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_pv_inverter_reads_power_energy_identity(sunspec_factory) -> None:
    emu = await sunspec_factory("pv_inverter", serial="PV-123", physics={"available_kw": 3.2})
    pv = SunSpecPvInverter(endpoint(emu))
    await pv.connect()
    try:
        assert [m.model_id for m in pv.client.chain] == [1, 101, 120, 123]
        ident = await pv.read_identity()
        assert (ident.serial, ident.model) == ("PV-123", "emulated-pv_inverter")
        reading = await pv.read_snapshot()
        assert reading.ac_power_kw == pytest.approx(3.2, abs=0.01)
        assert reading.counters.supplied_kwh >= 1234.5
        assert reading.grid.voltage_v == pytest.approx(202.0) and reading.grid.frequency_hz == pytest.approx(50.0)
        assert await pv.rated_power_kw() == pytest.approx(4.5)
        assert isinstance(pv, WritesPvLimit) and not isinstance(pv, WritesBatteryPower)
    finally:
        await pv.close()


@pytest.mark.parametrize("models", [(1, 101, 120, 123), (1, 701, 120, 704)])
async def test_pv_limit_curtails_and_release_restores(sunspec_factory, models) -> None:
    emu = await sunspec_factory("pv_inverter", models=models, physics={"available_kw": 3.0})
    pv = SunSpecPvInverter(endpoint(emu))
    await pv.connect()
    try:
        await pv.write_pv_limit_kw(1.5, revert_s=60)
        await wait_until(lambda: _power_near(pv, 1.5))
        await pv.write_pv_limit_kw(None, revert_s=60)
        await wait_until(lambda: _power_near(pv, 3.0))
    finally:
        await pv.close()


async def _power_near(device, kw: float) -> bool:
    return abs(((await device.read_snapshot()).ac_power_kw or 0.0) - kw) < 0.02


async def test_pv_limit_reverts_after_timer(sunspec_factory) -> None:
    emu = await sunspec_factory("pv_inverter", physics={"available_kw": 3.0})
    pv = SunSpecPvInverter(endpoint(emu))
    await pv.connect()
    try:
        await pv.write_pv_limit_kw(1.0, revert_s=1)
        await wait_until(lambda: _power_near(pv, 1.0), timeout_s=0.9)
        await wait_until(lambda: _power_near(pv, 3.0), timeout_s=3.0)  # device fell back on its own
    finally:
        await pv.close()


async def test_battery_704_setpoint_moves_soc_and_counters(sunspec_factory) -> None:
    emu = await sunspec_factory("battery", time_scale=3600.0)
    bat = SunSpecBattery(endpoint(emu))
    await bat.connect()
    try:
        assert bat.control_method() == "704_802" and bat.supports_fail_safe()
        assert isinstance(bat, ReadsStateOfCharge) and isinstance(bat, WritesHeartbeat)
        before = await bat.read_snapshot()
        await bat.write_battery_power_kw(-2.0, revert_s=60)  # charge 2 kW
        await asyncio.sleep(0.3)
        after = await bat.read_snapshot()
        assert after.ac_power_kw == pytest.approx(-2.0, abs=0.01)
        assert after.soc_pct > before.soc_pct
        assert after.counters.absorbed_kwh > before.counters.absorbed_kwh
        assert after.counters.supplied_kwh == pytest.approx(before.counters.supplied_kwh)
        await bat.write_battery_power_kw(1.0, revert_s=60)  # discharge 1 kW
        await wait_until(lambda: _power_near(bat, 1.0))
        await bat.write_battery_power_kw(None, revert_s=60)
        await wait_until(lambda: _power_near(bat, 0.0))
    finally:
        await bat.close()


async def test_battery_124_control_and_heartbeat(sunspec_factory) -> None:
    emu = await sunspec_factory("battery", models=(1, 120, 802, 124))
    bat = SunSpecBattery(endpoint(emu))
    await bat.connect()
    try:
        assert bat.control_method() == "123_124"
        await bat.write_battery_power_kw(2.0, revert_s=60)
        await wait_until(lambda: _power_near(bat, 2.0))
        await bat.write_battery_power_kw(-1.0, revert_s=60)
        await wait_until(lambda: _power_near(bat, -1.0))
        await bat.write_heartbeat()
        await bat.write_heartbeat()
        assert emu.physics.heartbeat == 2
        reading = await bat.read_snapshot()
        assert reading.counters.supplied_kwh is None  # 802/124 have no energy counters
    finally:
        await bat.close()


async def test_battery_setpoint_reverts_when_writes_stop(sunspec_factory) -> None:
    emu = await sunspec_factory("battery")
    bat = SunSpecBattery(endpoint(emu))
    await bat.connect()
    try:
        await bat.write_battery_power_kw(3.0, revert_s=1)
        await wait_until(lambda: _power_near(bat, 3.0), timeout_s=0.9)
        await wait_until(lambda: _power_near(bat, 0.0), timeout_s=3.0)
    finally:
        await bat.close()


async def test_profile_sign_flip_is_applied_both_ways(sunspec_factory) -> None:
    # A device that is charge-positive natively, described by a profile with power_sign=-1.
    emu = await sunspec_factory("battery", physics={"native_sign": -1})
    bat = SunSpecBattery(endpoint(emu), DeviceQuirks(power_sign=-1))
    await bat.connect()
    try:
        await bat.write_battery_power_kw(2.0, revert_s=60)
        await wait_until(lambda: _power_near(bat, 2.0))
        assert emu.physics.battery.power_kw == pytest.approx(2.0)  # physically discharging
    finally:
        await bat.close()


async def test_meter_power_and_counters(sunspec_factory) -> None:
    emu = await sunspec_factory("meter", physics={"power_kw": -2.5}, time_scale=3600.0)
    meter = SunSpecMeter(endpoint(emu))
    await meter.connect()
    try:
        first = await meter.read_snapshot()
        await asyncio.sleep(0.2)
        second = await meter.read_snapshot()
        assert second.ac_power_kw == pytest.approx(-2.5, abs=0.01)
        assert second.counters.absorbed_kwh > first.counters.absorbed_kwh  # exporting
        assert second.counters.supplied_kwh == pytest.approx(first.counters.supplied_kwh)
    finally:
        await meter.close()


@pytest.mark.parametrize("base", [0, 40000, 50000])
async def test_discovers_base_address(sunspec_factory, base: int) -> None:
    emu = await sunspec_factory("meter", base_address=base)
    meter = SunSpecMeter(endpoint(emu))
    await meter.connect()
    try:
        assert meter.client.base_address == base
    finally:
        await meter.close()


async def test_no_sunspec_marker_is_permanent(sunspec_factory) -> None:
    emu = await sunspec_factory("meter", base_address=1000)
    meter = SunSpecMeter(endpoint(emu))
    with pytest.raises(PermanentDeviceError) as info:
        await meter.connect()
    assert info.value.reason == errors.NO_SUNSPEC_MARKER


async def test_wrong_unit_id_is_permanent(sunspec_factory) -> None:
    emu = await sunspec_factory("meter", unit_id=3)
    meter = SunSpecMeter(endpoint(emu, unit_id=7))
    with pytest.raises(PermanentDeviceError) as info:
        await meter.connect()
    assert info.value.reason == errors.WRONG_UNIT_ID


async def test_missing_model_is_permanent(sunspec_factory) -> None:
    emu = await sunspec_factory("meter", models=(1, 120))
    meter = SunSpecMeter(endpoint(emu))
    with pytest.raises(PermanentDeviceError) as info:
        await meter.connect()
    assert info.value.reason == errors.MODEL_MISSING
    await meter.close()


async def test_connection_refused_is_transient() -> None:
    meter = SunSpecMeter(ModbusEndpoint("127.0.0.1", free_port(), timeout_s=0.5), DeviceQuirks(retries=0))
    with pytest.raises(TransientDeviceError) as info:
        await meter.connect()
    assert info.value.reason == errors.CONNECTION_REFUSED


async def test_timeout_is_transient_and_slow_device_still_works(sunspec_factory) -> None:
    emu = await sunspec_factory("meter")
    meter = SunSpecMeter(endpoint(emu, timeout_s=0.5), DeviceQuirks(retries=1, backoff_s=0.01))
    await meter.connect()
    try:
        emu.faults.delay_s = 0.2  # slow but within the timeout
        assert (await meter.read_snapshot()).ac_power_kw == pytest.approx(1.2, abs=0.01)
        emu.faults.delay_s = 1.0  # beyond it
        with pytest.raises(TransientDeviceError) as info:
            await meter.read_snapshot()
        assert info.value.reason in (errors.TIMEOUT, errors.CONNECTION_LOST)
        emu.faults.delay_s = 0.0
        assert (await meter.read_snapshot()).ac_power_kw == pytest.approx(1.2, abs=0.01)
    finally:
        await meter.close()


@pytest.mark.parametrize("code,kind", [(6, TransientDeviceError), (2, PermanentDeviceError)])
async def test_exception_responses(sunspec_factory, code: int, kind: type) -> None:
    emu = await sunspec_factory("meter")
    meter = SunSpecMeter(endpoint(emu), DeviceQuirks(retries=0))
    await meter.connect()
    try:
        emu.faults.exception_code = code
        with pytest.raises(kind):
            await meter.read_snapshot()
        emu.faults.exception_code = None
        assert (await meter.read_snapshot()).ac_power_kw is not None
    finally:
        await meter.close()


async def test_garbage_and_not_implemented_values_never_become_numbers(sunspec_factory) -> None:
    emu = await sunspec_factory("battery")
    bat = SunSpecBattery(endpoint(emu))
    await bat.connect()
    try:
        emu.faults.garbage = True
        reading = await bat.read_snapshot()
        assert reading.ac_power_kw is None and reading.soc_pct is None
        assert any("scale factor" in n for n in reading.notes) and any("SoC" in n for n in reading.notes)
        emu.faults.garbage = False
        emu.faults.not_implemented = True
        reading = await bat.read_snapshot()
        assert reading.ac_power_kw is None and reading.soc_pct is None
        emu.faults.not_implemented = False
        reading = await bat.read_snapshot()
        assert reading.ac_power_kw == pytest.approx(0.0) and 0 < reading.soc_pct < 100
    finally:
        await bat.close()


async def test_counter_going_backwards_is_dropped(sunspec_factory) -> None:
    emu = await sunspec_factory("meter")
    meter = SunSpecMeter(endpoint(emu))
    await meter.connect()
    try:
        first = await meter.read_snapshot()
        emu.physics.meter = type(emu.physics.meter)(1.2, first.counters.supplied_kwh - 10.0, 500.0)
        second = await meter.read_snapshot()
        assert second.counters.supplied_kwh is None
        assert any("backwards" in n for n in second.notes)
    finally:
        await meter.close()


async def test_disconnect_mid_poll_reconnects(sunspec_factory) -> None:
    emu = await sunspec_factory("battery")
    bat = SunSpecBattery(endpoint(emu), DeviceQuirks(retries=2, backoff_s=0.01))
    await bat.connect()
    try:
        emu.faults.drop_next = 1  # the next request kills the connection
        reading = await bat.read_snapshot()
        assert reading.soc_pct is not None
        assert emu.faults.drop_next == 0
    finally:
        await bat.close()


async def test_single_client_device_shares_one_connection(sunspec_factory) -> None:
    emu = await sunspec_factory("battery")
    emu.faults.single_client = True
    bat = SunSpecBattery(endpoint(emu))
    other = SunSpecBattery(endpoint(emu), DeviceQuirks(retries=0))
    await bat.connect()
    try:
        # reads and writes of one driver go through its single connection, concurrently
        await asyncio.gather(bat.read_snapshot(), bat.write_battery_power_kw(1.0, 60), bat.read_snapshot())
        assert emu.connection_count == 1
        with pytest.raises(TransientDeviceError):
            await other.connect()
        assert (await bat.read_snapshot()).ac_power_kw is not None
    finally:
        await bat.close()
        await other.close()


async def test_modbus_tls_with_client_certificate(sunspec_factory, tmp_path) -> None:
    import ssl

    from drivers.profile import TlsSettings
    from sim.emulators.certs import make_tls_pki

    tls = make_tls_pki(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tls.ca_path))
    ctx.load_cert_chain(tls.server_cert_path, tls.server_key_path)
    ctx.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: the device demands a client certificate
    emu = await sunspec_factory("meter", sslctx=ctx)
    good = SunSpecMeter(endpoint(emu, tls=TlsSettings(str(tls.ca_path), str(tls.client_cert_path),
                                                      str(tls.client_key_path))))
    await good.connect()
    try:
        assert (await good.read_snapshot()).ac_power_kw == pytest.approx(1.2, abs=0.01)
    finally:
        await good.close()
    anonymous = SunSpecMeter(endpoint(emu, tls=TlsSettings(str(tls.ca_path)), timeout_s=0.5), DeviceQuirks(retries=0))
    with pytest.raises(PermanentDeviceError) as info:
        await anonymous.connect()
    assert info.value.reason == errors.CERTIFICATE_REJECTED


async def test_caller_timeout_leaves_the_driver_usable(sunspec_factory) -> None:
    emu = await sunspec_factory("meter")
    meter = SunSpecMeter(endpoint(emu, timeout_s=2.0))
    await meter.connect()
    try:
        emu.faults.delay_s = 0.5
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(meter.read_snapshot(), timeout=0.1)  # the daemon's own deadline
        emu.faults.delay_s = 0.0
        assert (await meter.read_snapshot()).ac_power_kw == pytest.approx(1.2, abs=0.01)
    finally:
        await meter.close()


async def test_implausible_power_is_dropped(sunspec_factory) -> None:
    emu = await sunspec_factory("meter", physics={"power_kw": 25.0})
    meter = SunSpecMeter(endpoint(emu), DeviceQuirks(plausible_power_kw=12.0))
    await meter.connect()
    try:
        reading = await meter.read_snapshot()
        assert reading.ac_power_kw is None and any("plausible" in n for n in reading.notes)
    finally:
        await meter.close()


async def test_exception_4_at_discovery_is_reported_as_such_not_as_no_marker(sunspec_factory) -> None:
    emu = await sunspec_factory("meter")
    emu.faults.exception_code = 4
    meter = SunSpecMeter(endpoint(emu, base_address=40000), DeviceQuirks(retries=0))
    with pytest.raises(TransientDeviceError) as info:
        await meter.connect()
    assert info.value.reason == errors.EXCEPTION_RESPONSE
    assert info.value.detail == "device answered Modbus exception 4 (server device failure) at register 40000"
    await meter.close()
    emu.faults.exception_code = None
    await meter.connect()  # the device recovered: found as usual
    try:
        assert meter.client.base_address == 40000
    finally:
        await meter.close()

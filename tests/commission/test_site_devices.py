"""gridctl.devices: config objects mapped onto drivers, and per-device error isolation in a poll."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.errors import DeviceError
from drivers.opcua.router import OpcUaRouter
from drivers.sunspec.devices import SunSpecBattery, SunSpecMeter, SunSpecPvInverter
from gridctl.config import load_site
from gridctl.config.devices import OpcuaIdentity
from gridctl.devices import SiteDevices, opcua_endpoint, quirks_from_profile
from sim.emulators.site import build_site, clear_day_pv_kw
from tests.fixtures.emulators import MISONO, write_site_config


def test_misono_maps_every_device_to_the_right_driver() -> None:
    site = load_site(MISONO)
    devices = SiteDevices.from_config(site, base_dir=Path("/srv/gridctl"))
    assert len(devices.bindings) == len(site.all_devices())
    kinds = {b.kind: type(b.driver) for b in devices.bindings.values()}
    assert kinds == {"pv_inverter": SunSpecPvInverter, "battery": SunSpecBattery, "meter": SunSpecMeter,
                     "router": OpcUaRouter}
    router = devices.binding("home-1-dgr").driver
    assert router.endpoint.certificate_path == "/srv/gridctl/var/misono/pki/gridctl-client-cert.der"
    assert router.endpoint.security_mode == "SignAndEncrypt" and router.endpoint.identity == "x509"
    pv = devices.binding("home-1-pv").driver
    assert (pv.client.endpoint.port, pv.client.endpoint.base_address, pv.client.endpoint.timeout_s) == (15021, 40000, 1.0)
    assert devices.binding("home-1-battery").revert_s == 60


def test_profile_quirks() -> None:
    site = load_site(MISONO)
    ieee = quirks_from_profile(site.device_profiles["ieee1547-battery"])
    assert ieee.power_sign == -1 and ieee.control == "704_802"
    assert ieee.inter_request_delay_s == pytest.approx(0.02) and ieee.max_registers_per_read == 100
    generic = quirks_from_profile(site.device_profiles["generic-sunspec-battery"])
    assert generic.power_sign == 1 and generic.control == "123_124"


def test_node_selection() -> None:
    site = load_site(MISONO)
    devices = SiteDevices.from_config(site, ["home-5"])
    assert sorted(devices.bindings) == ["home-5-dgr", "home-5-meter", "home-5-pv"]


def test_clear_day_shape() -> None:
    noon_jst = 3 * 3600.0  # 03:00 UTC on 1970-01-01 is 12:00 JST
    assert clear_day_pv_kw(5.0, 4.5, noon_jst) == pytest.approx(4.0)
    assert clear_day_pv_kw(5.0, 3.0, noon_jst) == pytest.approx(3.0)  # inverter clipping
    assert clear_day_pv_kw(5.0, 4.5, noon_jst + 12 * 3600.0) == 0.0  # midnight


@pytest.mark.integration
async def test_poll_isolates_a_dead_device(tmp_path: Path) -> None:
    config = write_site_config(tmp_path, node_ids=["home-2"])
    site = load_site(config)
    emulated = build_site(site, base_dir=tmp_path)
    emulated.routers.clear()
    await emulated.start()
    devices = SiteDevices.from_config(site, base_dir=tmp_path)
    del devices.bindings["home-2-dgr"]
    try:
        errors = await devices.connect_all()
        assert errors == {"home-2-pv": None, "home-2-battery": None, "home-2-meter": None}
        await emulated.sunspec["home-2-pv"].stop()
        readings = await devices.poll()
        assert isinstance(readings["home-2-pv"], DeviceError)
        meter, battery = readings["home-2-meter"], readings["home-2-battery"]
        assert not isinstance(meter, DeviceError) and not isinstance(battery, DeviceError)
        # node balance of the emulated plant: grid = load - pv - battery (PV barely moves in a second)
        assert battery.soc_pct == pytest.approx(52.5)
        await devices.binding("home-2-battery").driver.write_battery_power_kw(2.0, revert_s=30)
        after = await devices.poll()
        assert after["home-2-battery"].ac_power_kw == pytest.approx(2.0, abs=0.01)
        assert after["home-2-meter"].ac_power_kw == pytest.approx(meter.ac_power_kw - 2.0, abs=0.05)
    finally:
        await devices.close()
        await emulated.stop()


def test_plausibility_bounds_come_from_ratings() -> None:
    site = load_site(MISONO)
    devices = SiteDevices.from_config(site)
    assert devices.binding("home-1-pv").driver.quirks.plausible_power_kw == pytest.approx(9.0)
    assert devices.binding("home-1-battery").driver.quirks.plausible_power_kw == pytest.approx(8.0)
    assert devices.binding("home-1-meter").driver.quirks.plausible_power_kw == pytest.approx(12.0)


def test_an_opcua_password_comes_from_its_credential_before_the_environment(tmp_path, monkeypatch) -> None:
    """Secrets are systemd credentials (never Environment=, readable through systemctl show):
    the router password is read from $CREDENTIALS_DIRECTORY/ID, the variable only outside it."""
    site = load_site(MISONO)
    router = next(d for _node, d in site.routers() if d.id == "home-1-dgr")
    ua = router.protocol.opcua
    identity = OpcuaIdentity(kind="username", username="gridctl", password_credential="home-1-dgr-password",
                             password_env="GRIDCTL_TEST_ROUTER_PASSWORD")
    ua = ua.model_copy(update={"identity": identity})
    folder = tmp_path / "credentials"
    folder.mkdir()
    monkeypatch.setenv("GRIDCTL_TEST_ROUTER_PASSWORD", "from-the-environment")
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert opcua_endpoint(ua, tmp_path).password == "from-the-environment"
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(folder))
    (folder / "home-1-dgr-password").write_text("s3cret\n", encoding="utf-8")
    assert opcua_endpoint(ua, tmp_path).password == "s3cret"
    with pytest.raises(ValueError, match="password_credential"):
        OpcuaIdentity(kind="username", username="gridctl")

"""From validated site configuration to driver instances, and one-call polling of a site.

The application side of ``drivers/``: it maps config objects (``gridctl.config``) and device
profiles onto the drivers' plain constructor arguments. Relative certificate paths are taken
relative to ``base_dir`` (the working directory by default).

Typical daemon use::

    devices = SiteDevices.from_config(site)
    await devices.connect_all()                 # errors per device, never raises
    readings = await devices.poll()             # {device_id: DeviceReading | DeviceError}
    await devices.binding("home-1-battery").driver.write_battery_power_kw(1.5, revert_s=60)
    await devices.close()
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

from drivers.capabilities import DeviceReading
from drivers.release import release_driver
from drivers.errors import DeviceError, PermanentDeviceError
from drivers.profile import DeviceQuirks, ModbusEndpoint, OpcUaEndpoint, TlsSettings
from drivers.relay.modbus_board import ModbusRelayBoard, RelayBoardMap
from drivers.sunspec.devices import SunSpecBattery, SunSpecDevice, SunSpecMeter, SunSpecPvInverter
from gridctl.config.devices import DeviceProfile, ModbusProtocol, OpcuaProtocol, RelayBoardDevice, link_leg_ids
from gridctl.config.site import Node, SiteConfig
from gridctl.credentials import read_secret

if TYPE_CHECKING:  # asyncua (about 35 MB) loads only for a site with OPC UA devices
    from drivers.echonet.client import EchonetClient
    from drivers.echonet.devices import EchonetDevice
    from drivers.opcua.router import OpcUaRouter

Driver = Union[SunSpecDevice, ModbusRelayBoard, "OpcUaRouter", "EchonetDevice"]

_SUNSPEC_CLASSES: dict[str, type[SunSpecDevice]] = {
    "pv_inverter": SunSpecPvInverter,
    "battery": SunSpecBattery,
    "meter": SunSpecMeter,
}


def _path(base_dir: Path, value: Path | str | None) -> str | None:
    if value is None:
        return None
    p = Path(value)
    return str(p if p.is_absolute() else base_dir / p)


#: Readings beyond this multiple of a device's rating are garbage, not physics.
PLAUSIBLE_RATING_FACTOR = 2.0


def plausible_power_kw(node: Node, device) -> float | None:  # noqa: ANN001 - config device union
    """Bound for power readings [kW]: twice the rating (meters: the grid import limit)."""
    rating = getattr(device, "rating", None)
    if device.kind == "pv_inverter":
        return PLAUSIBLE_RATING_FACTOR * rating.ac_kw
    if device.kind == "battery":
        return PLAUSIBLE_RATING_FACTOR * max(rating.max_charge_kw, rating.max_discharge_kw)
    if device.kind == "meter":
        limit = getattr(rating, "max_kw", None) or (node.grid.import_limit_kw if node.grid else None)
        return None if limit is None else PLAUSIBLE_RATING_FACTOR * limit
    return None


def quirks_from_profile(profile: DeviceProfile, plausible_kw: float | None = None) -> DeviceQuirks:
    """Driver quirks for a device profile (sign flips, pacing, control method, plausibility)."""
    control = "auto"
    if 704 in profile.control_models or 802 in profile.control_models and 124 not in profile.control_models:
        control = "704_802"
    elif {123, 124} & set(profile.control_models):
        control = "123_124"
    return DeviceQuirks(
        power_sign=-1 if profile.signs.power else 1,
        swap_counters=profile.signs.energy_counters,
        control=control,
        inter_request_delay_s=profile.quirks.inter_request_delay_s,
        max_registers_per_read=profile.quirks.max_registers_per_read,
        plausible_power_kw=plausible_kw,
    )


def modbus_endpoint(modbus: ModbusProtocol, base_dir: Path) -> ModbusEndpoint:
    """Driver endpoint for a config ``protocol.modbus`` block."""
    tls = None
    if modbus.tls is not None:
        tls = TlsSettings(ca_path=_path(base_dir, modbus.tls.ca_path),
                          certificate_path=_path(base_dir, modbus.tls.certificate_path),
                          private_key_path=_path(base_dir, modbus.tls.private_key_path))
    return ModbusEndpoint(host=modbus.host, port=modbus.port, unit_id=modbus.unit_id,
                          base_address=modbus.base_address, timeout_s=modbus.timeout_s, tls=tls)


def opcua_endpoint(ua: OpcuaProtocol, base_dir: Path) -> OpcUaEndpoint:
    """Driver endpoint for a config ``protocol.opcua`` block (the password from its systemd
    credential, else its environment variable: :func:`gridctl.credentials.read_secret`)."""
    password = read_secret(ua.identity.password_credential, ua.identity.password_env)
    return OpcUaEndpoint(
        endpoint_url=ua.endpoint_url, security_policy=ua.security_policy, security_mode=ua.security_mode,
        certificate_path=_path(base_dir, ua.certificate_path), private_key_path=_path(base_dir, ua.private_key_path),
        server_certificate_path=_path(base_dir, ua.server_certificate_path), identity=ua.identity.kind,
        username=ua.identity.username, password=password, timeout_s=ua.timeout_s,
    )


def relay_board_map(device: RelayBoardDevice, profile: DeviceProfile) -> RelayBoardMap:
    """Driver register map of a relay board: the profile's ``relay`` block, the device's channels."""
    relay = profile.relay
    if relay is None:  # the config rejects this; a guard for hand-built configs
        raise ValueError(f"profile {profile.id} has no 'relay' block")
    return RelayBoardMap(
        channels=device.rating.channels, coil_base=relay.coil_base,
        discrete_input_base=relay.discrete_input_base, watchdog_register=relay.watchdog_register,
        watchdog_unit_s=relay.watchdog_unit_s, watchdog_timeout_s=relay.watchdog_timeout_s,
        energised_disconnects=relay.energised_means == "disconnect",
    )


def echonet_driver(device, profile: DeviceProfile | None, plausible_kw: float | None,  # noqa: ANN001
                   client: EchonetClient | None = None) -> EchonetDevice:
    """ECHONET Lite driver for a config device with an ``echonet`` block: endpoint from the site
    file, object class and quirks from the profile, plausibility bound from the rating.

    ``client`` is shared by the drivers of one :class:`SiteDevices`; a device with the
    ``replies_to_3610`` quirk (and every device without ``client``) uses the event loop's shared
    client for its port instead (one socket on port 3610 for all such devices).
    """
    from drivers.echonet.devices import EchonetBattery, EchonetPvInverter, EchonetSmartMeter, EchonetSwitch
    from drivers.echonet.frame import Eoj
    from drivers.echonet.quirks import EchonetQuirks
    from drivers.profile import EchonetEndpoint

    el = device.protocol.echonet
    endpoint = EchonetEndpoint(host=el.host, port=el.port, instance=el.instance, timeout_s=el.timeout_s)
    known = profile.echonet if profile is not None and profile.echonet is not None else None
    options = known.quirks.model_dump() if known is not None else {}
    quirks = EchonetQuirks(**options, plausible_power_kw=plausible_kw)
    cls = {"pv_inverter": EchonetPvInverter, "battery": EchonetBattery, "meter": EchonetSmartMeter,
           "switch": EchonetSwitch}[device.kind]
    shared = None if quirks.replies_to_3610 else client
    driver = cls(endpoint, shared, quirks, name=device.id)
    if known is not None and known.class_code != cls.CLASS_CODE:  # a switch: any appliance through 0x80
        driver.eoj = Eoj.of(known.class_code, el.instance)
    return driver


@dataclass(frozen=True)
class DeviceBinding:
    """A configured device and its driver.

    Attributes
    ----------
    node_id, device_id, kind : str
    driver : SunSpecPvInverter, SunSpecBattery, SunSpecMeter, ModbusRelayBoard or OpcUaRouter
    profile : DeviceProfile or None
    config : the device's config object
    revert_s : float
        Device fail-safe delay to send with every setpoint [s] (profile ``revert_timeout_s``).
    """

    node_id: str
    device_id: str
    kind: str
    driver: Driver
    profile: DeviceProfile | None
    config: object
    revert_s: float


def build_binding(site: SiteConfig, node: Node, device, base_dir: Path | None = None,  # noqa: ANN001
                  echonet_client: EchonetClient | None = None) -> DeviceBinding:
    """Driver for one configured device (ECHONET Lite drivers on ``echonet_client`` if given)."""
    base = base_dir or Path.cwd()
    profile = site.device_profiles.get(device.profile)
    revert_s = profile.revert_timeout_s if profile else 60.0
    if device.protocol.opcua is not None:
        from drivers.opcua.router import OpcUaRouter

        driver: Driver = OpcUaRouter(opcua_endpoint(device.protocol.opcua, base), name=device.id)
    elif device.protocol.echonet is not None:
        driver = echonet_driver(device, profile, plausible_power_kw(node, device), echonet_client)
    elif isinstance(device, RelayBoardDevice) and profile is not None:
        driver = ModbusRelayBoard(modbus_endpoint(device.protocol.modbus, base), relay_board_map(device, profile),
                                  name=device.id)
    else:
        bound = plausible_power_kw(node, device)
        quirks = quirks_from_profile(profile, bound) if profile else DeviceQuirks(plausible_power_kw=bound)
        cls = _SUNSPEC_CLASSES[device.kind]
        driver = cls(modbus_endpoint(device.protocol.modbus, base), quirks, name=device.id)
    return DeviceBinding(node.id, device.id, device.kind, driver, profile, device, revert_s)


class SiteDevices:
    """Every device of a site (or of some nodes) with its driver."""

    def __init__(self, bindings: list[DeviceBinding], echonet_client: EchonetClient | None = None) -> None:
        self.bindings = {b.device_id: b for b in bindings}
        self.echonet_client = echonet_client

    @classmethod
    def from_config(cls, site: SiteConfig, node_ids: list[str] | None = None,
                    base_dir: Path | None = None) -> SiteDevices:
        """Bindings for all devices, or for the devices of ``node_ids``; the ECHONET Lite
        devices share one client (one UDP socket), closed by :meth:`close`."""
        chosen = [(n, d) for n, d in site.all_devices() if node_ids is None or n.id in node_ids]
        client = None
        if any(d.protocol.echonet is not None for _n, d in chosen):
            from drivers.echonet.client import EchonetClient

            client = EchonetClient()
        return cls([build_binding(site, n, d, base_dir, client) for n, d in chosen], client)

    def binding(self, device_id: str) -> DeviceBinding:
        return self.bindings[device_id]

    async def connect_all(self) -> dict[str, DeviceError | None]:
        """Connect every device concurrently; the error (or None) per device id."""
        async def one(b: DeviceBinding) -> DeviceError | None:
            try:
                await b.driver.connect()
            except DeviceError as exc:
                return exc
            return None
        results = await asyncio.gather(*(one(b) for b in self.bindings.values()))
        return dict(zip(self.bindings, results, strict=True))

    async def poll(self) -> dict[str, DeviceReading | DeviceError]:
        """One snapshot read of every device, concurrently, errors isolated per device."""
        async def one(b: DeviceBinding) -> DeviceReading | DeviceError:
            try:
                return await b.driver.read_snapshot()
            except DeviceError as exc:
                return exc
            except Exception as exc:  # noqa: BLE001 - a driver bug must not stop the cycle
                return PermanentDeviceError(b.device_id, "driver_bug", f"{type(exc).__name__}: {exc}")
        results = await asyncio.gather(*(one(b) for b in self.bindings.values()))
        return dict(zip(self.bindings, results, strict=True))

    async def release(self) -> dict[str, DeviceError | None]:
        """Hand every connected battery, PV inverter and router link leg back to the device's own
        control (battery auto/standby, no PV limit, legs unset); the error (or None) per device.

        The daemon does this when it stops cleanly; ``gridctl release`` (the unit's
        ``ExecStopPost``) does it after any stop, a crash or a watchdog kill included, for
        devices that have no revert timer of their own (ECHONET Lite batteries hold their last
        mode and power until told otherwise).
        """
        async def one(b: DeviceBinding) -> DeviceError | None:
            try:
                await release_driver(b.driver, link_leg_ids(b.config), b.revert_s)
            except DeviceError as exc:
                return exc
            return None
        results = await asyncio.gather(*(one(b) for b in self.bindings.values()))
        return dict(zip(self.bindings, results, strict=True))

    async def close(self) -> None:
        await asyncio.gather(*(b.driver.close() for b in self.bindings.values()))
        if self.echonet_client is not None:
            await self.echonet_client.close()

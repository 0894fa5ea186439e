"""Emulate every device of a site on the loopback ports its configuration names.

Each node gets coupled plant models: PV follows a clear-day shape in JST from the array's
peak power, the load is the node's average (``annual_kwh / 8760``), batteries follow their
setpoints, the grid meter reads ``load - pv - battery - link inflow`` (the node's router link
legs, positive into the router) and the router's legs mirror the same devices, with the grid
leg balancing. Certificates for the OPC UA routers are created where the
configuration expects them (``emulation.certificate_dir`` and each router's paths).

ECHONET Lite devices (PV, storage battery, smart meter, switch) are objects on one
:class:`~sim.emulators.echonet_node.EchonetNode` per configured (host, port), coupled to the
node's plant like the SunSpec ones; an ECHONET switch named in ``load.switches`` gates its
share of the node's sheddable load as a relay board channel does.

Relative paths in the configuration are taken relative to ``base_dir`` (the working
directory by default), the same rule the daemon applies.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from gridctl.config.devices import BatteryDevice, MeterDevice, PvInverterDevice, RelayBoardDevice, RouterDevice
from gridctl.config.site import Node, SiteConfig
from sim.emulators.certs import CLIENT_URI, SERVER_URI, make_certificate_at, trust
from sim.emulators.echonet_devices import (
    EchonetBatteryObject,
    EchonetMeterObject,
    EchonetPvObject,
    EchonetSwitchObject,
    PlantClock,
)
from sim.emulators.echonet_node import EchonetNode
from sim.emulators.relay_board import RelayBoardEmulator, RelayBoardSpec
from sim.emulators.router_server import RouterEmulator, RouterLegState, RouterSecurity
from sim.emulators.sunspec_map import Identity
from sim.emulators.sunspec_server import DevicePhysics, SunSpecEmulator, SunSpecFaults
from sim.plant.devices import BatterySpec, BatteryState, CounterPair, PvSpec, PvState, RouterLegSpec

log = logging.getLogger(__name__)

_DEFAULT_MODELS = {"pv_inverter": (1, 101, 120, 123), "battery": (1, 120, 701, 704, 713, 802, 124),
                   "meter": (1, 203)}
_JST_OFFSET_H = 9.0
_PV_DERATE = 0.8  # a clear day's peak AC output per kWp, after temperature and inverter losses


class EmulationError(ValueError):
    """The site cannot be emulated as configured (one clear line)."""


def clear_day_pv_kw(dc_kwp: float, rated_kw: float, epoch_s: float) -> float:
    """Available PV power [kW] on a clear day at UNIX time ``epoch_s``: a sine from 06:00 to 18:00 JST."""
    hour = (epoch_s / 3600.0 + _JST_OFFSET_H) % 24.0
    shape = max(0.0, math.sin(math.pi * (hour - 6.0) / 12.0))
    return min(rated_kw, _PV_DERATE * dc_kwp * shape)


@dataclass
class EmulatedSite:
    """Running emulators of a site, by device id."""

    config: SiteConfig
    sunspec: dict[str, SunSpecEmulator] = field(default_factory=dict)
    routers: dict[str, RouterEmulator] = field(default_factory=dict)
    relays: dict[str, RelayBoardEmulator] = field(default_factory=dict)
    #: ECHONET Lite nodes by (host, port), and each ECHONET device's object by device id.
    echonet_nodes: dict[tuple[str, int], EchonetNode] = field(default_factory=dict)
    echonet: dict[str, object] = field(default_factory=dict)
    #: Each node's served load now [kW] (its critical share at least), by node id.
    load_kw: dict[str, Callable[[], float]] = field(default_factory=dict)

    async def start(self) -> None:
        """Start every device; Modbus and ECHONET Lite first (fast), then the OPC UA routers
        side by side (each builds asyncua's standard address space in a worker thread: seconds
        apiece)."""
        for emulator in [*self.sunspec.values(), *self.relays.values(), *self.echonet_nodes.values()]:
            await emulator.start()
        await asyncio.gather(*(emulator.start() for emulator in self.routers.values()))

    async def stop(self) -> None:
        """Stop every device (concurrently: an OPC UA server takes about a second to stop)."""
        await asyncio.gather(*(router.stop() for router in self.routers.values()))
        for node in self.echonet_nodes.values():
            await node.stop()
        await asyncio.gather(*(emulator.stop() for emulator in [*self.sunspec.values(), *self.relays.values()]))

    def set_grid_connected(self, connected: bool) -> None:
        """Emulate an outage (False) or restoration (True) at every router."""
        for router in self.routers.values():
            router.grid_connected = connected


class _NodeModel:
    """The coupled plant of one node, shared by its device emulators."""

    def __init__(self, node: Node, epoch0_s: float) -> None:
        self.node = node
        self.average_load_kw = node.load.annual_kwh / 8760.0
        #: The node's switched channels: (board, channel, True when energised disconnects).
        self.switches: list[tuple[RelayBoardEmulator, int, bool]] = []
        #: The node's ECHONET Lite load switches (each one channel).
        self.echonet_switches: list[EchonetSwitchObject] = []
        self.pv: dict[str, SunSpecEmulator] = {}
        self.batteries: dict[str, SunSpecEmulator] = {}
        self.link_legs: list[RouterLegState] = []
        self._epoch0_s = epoch0_s

    @property
    def load_kw(self) -> float:
        """Served load [kW]: the average, less the sheddable share behind disconnected channels."""
        channels = len(self.switches) + len(self.echonet_switches)
        if not channels:
            return self.average_load_kw
        off = sum(board.circuit_energised(ch) == disconnects for board, ch, disconnects in self.switches)
        off += sum(not switch.is_on for switch in self.echonet_switches)
        sheddable = 1.0 - self.node.load.critical_share_pct / 100.0
        return self.average_load_kw * (1.0 - sheddable * off / channels)

    def epoch_s(self, sim_s: float) -> float:
        return self._epoch0_s + sim_s

    def pv_kw(self, device_ids: list[str] | None = None) -> float:
        total = 0.0
        for dev_id, emu in self.pv.items():
            if device_ids is None or dev_id in device_ids:
                emu.advance()
                total += emu.physics.pv.power_kw if emu.physics.pv else 0.0
        return total

    def battery_kw(self, device_ids: list[str] | None = None) -> float:
        total = 0.0
        for dev_id, emu in self.batteries.items():
            if device_ids is None or dev_id in device_ids:
                emu.advance()
                total += emu.physics.battery.power_kw if emu.physics.battery else 0.0
        return total

    def link_in_kw(self) -> float:
        """Power arriving over the router's link legs [kW, positive into the node]."""
        return sum(leg.counters.power_kw for leg in self.link_legs)

    def grid_kw(self, _sim_s: float) -> float:
        # supply-positive node balance: pv + battery + link inflow + grid = load
        return self.load_kw - self.pv_kw() - self.battery_kw() - self.link_in_kw()


def _resolve(base_dir: Path, path: Path | str | None) -> Path | None:
    if path is None:
        return None
    p = Path(path)
    return p if p.is_absolute() else base_dir / p


class SiteBuilder:
    """Builds an :class:`EmulatedSite` from a validated site configuration."""

    def __init__(self, site: SiteConfig, *, base_dir: Path | None = None, time_scale: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, epoch0_s: float | None = None) -> None:
        self.site = site
        self.base_dir = base_dir or Path.cwd()
        self.time_scale = time_scale
        self.clock = clock
        self.epoch0_s = time.time() if epoch0_s is None else epoch0_s

    def build(self) -> EmulatedSite:
        out = EmulatedSite(self.site)
        models: dict[str, _NodeModel] = {}
        self._plant_clock = PlantClock(self.time_scale, self.clock, self.epoch0_s)
        for node in self.site.nodes:
            model = _NodeModel(node, self.epoch0_s)
            models[node.id] = model
            for device in node.devices:
                if isinstance(device, (PvInverterDevice, BatteryDevice)):
                    emu = self._echonet(device, model) if device.protocol.echonet else self._sunspec(device, model)
                    (model.pv if isinstance(device, PvInverterDevice) else model.batteries)[device.id] = emu
                    (out.echonet if device.protocol.echonet else out.sunspec)[device.id] = emu
            for device in node.devices:  # meters need the node's PV and batteries
                if isinstance(device, MeterDevice):
                    emu = self._echonet(device, model) if device.protocol.echonet else self._sunspec(device, model)
                    (out.echonet if device.protocol.echonet else out.sunspec)[device.id] = emu
                if isinstance(device, RelayBoardDevice):
                    out.relays[device.id] = self._relay(device)
                if device.kind == "switch":
                    out.echonet[device.id] = EchonetSwitchObject(
                        instance=device.protocol.echonet.instance, clock=self._plant_clock)
            model.switches = [(out.relays[s.device], s.channel, self._disconnects(s.device))
                              for s in node.load.switches if s.device in out.relays]
            model.echonet_switches = [out.echonet[s.device] for s in node.load.switches
                                      if s.device in out.echonet]
            out.load_kw[node.id] = lambda model=model: model.load_kw
        self._echonet_nodes(out)
        trusted = self._pki()
        for node in self.site.nodes:
            for device in node.devices:
                if isinstance(device, RouterDevice):
                    out.routers[device.id] = self._router(device, models[node.id], trusted)
        return out

    # -- SunSpec devices ------------------------------------------------------------------
    def _sunspec(self, device, model: _NodeModel) -> SunSpecEmulator:  # noqa: ANN001 - config union
        modbus = device.protocol.modbus
        if modbus is None:
            raise EmulationError(f"device {device.id}: only Modbus devices and routers can be emulated")
        if modbus.tls is not None:
            raise EmulationError(f"device {device.id}: emulating Modbus/TCP Security (TLS) is not supported")
        profile = self.site.device_profiles.get(device.profile)
        if profile is None:
            raise EmulationError(f"device {device.id}: unknown profile {device.profile!r}")
        physics = self._physics(device, model, native_sign=-1 if profile.signs.power else 1)
        identity = Identity(manufacturer=profile.vendor[:32], model=profile.id[:32],
                            serial=device.serial or f"EMU-{device.id}"[:32])
        return SunSpecEmulator(
            physics, tuple(profile.models_expected) or _DEFAULT_MODELS[device.kind], identity,
            host=modbus.host, port=modbus.port, unit_id=modbus.unit_id or 1,
            base_address=40000 if modbus.base_address is None else modbus.base_address,
            time_scale=self.time_scale, clock=self.clock,
            faults=SunSpecFaults(single_client=profile.quirks.single_client),
        )

    def _physics(self, device, model: _NodeModel, native_sign: int) -> DevicePhysics:  # noqa: ANN001
        if isinstance(device, PvInverterDevice):
            r = device.rating
            return DevicePhysics(
                kind="pv_inverter", pv_spec=PvSpec(r.ac_kw), pv=PvState(0.0, 1000.0 + r.dc_kwp * 100.0),
                available_pv_kw=lambda t: clear_day_pv_kw(r.dc_kwp, r.ac_kw, model.epoch_s(t)),
                native_sign=native_sign,
            )
        if isinstance(device, BatteryDevice):
            r = device.rating
            spec = BatterySpec(r.capacity_kwh, r.max_charge_kw, r.max_discharge_kw, r.charge_efficiency_pct / 100.0,
                               r.discharge_efficiency_pct / 100.0, r.self_discharge_pct_per_day, r.soc_min_pct,
                               r.soc_max_pct)
            stored = r.capacity_kwh * (r.soc_min_pct + r.soc_max_pct) / 200.0
            return DevicePhysics(kind="battery", battery_spec=spec,
                                 battery=BatteryState(stored, 0.0, 50.0 + r.capacity_kwh, 40.0 + r.capacity_kwh),
                                 native_sign=native_sign)
        rated = model.node.grid.import_limit_kw if model.node.grid is not None else 30.0
        return DevicePhysics(kind="meter", meter=CounterPair(0.0, 3000.0, 1000.0), meter_power_kw=model.grid_kw,
                             native_sign=native_sign, meter_rated_kw=max(rated, 1.0))

    # -- ECHONET Lite devices -------------------------------------------------------------
    def _echonet(self, device, model: _NodeModel):  # noqa: ANN001, ANN202 - config union, echonet object
        """A plant-backed ECHONET Lite object (served on its node by :meth:`_echonet_nodes`)."""
        physics = self._physics(device, model, native_sign=1)  # the spec's signs are on the wire
        kw = {"instance": device.protocol.echonet.instance, "clock": self._plant_clock}
        if isinstance(device, PvInverterDevice):
            return EchonetPvObject(physics, **kw)
        if isinstance(device, BatteryDevice):
            return EchonetBatteryObject(physics, **kw)
        return EchonetMeterObject(physics, **kw)

    def _echonet_nodes(self, out: EmulatedSite) -> None:
        """One node per configured (host, port), hosting its devices' objects."""
        hosted: dict[tuple[str, int], dict] = {}
        for node in self.site.nodes:
            for device in node.devices:
                el = device.protocol.echonet
                if el is None:
                    continue
                obj = out.echonet[device.id].object
                objects = hosted.setdefault((el.host, el.port), {})
                if obj.eoj in objects:
                    raise EmulationError(f"device {device.id}: object {obj.eoj} already served at "
                                         f"{el.host}:{el.port}")
                objects[obj.eoj] = obj
        for (host, port), objects in hosted.items():
            out.echonet_nodes[(host, port)] = EchonetNode(host, port, objects.values())

    # -- relay boards ---------------------------------------------------------------------
    def _relay(self, device: RelayBoardDevice) -> RelayBoardEmulator:
        modbus = device.protocol.modbus
        profile = self.site.device_profiles.get(device.profile)
        if modbus is None or profile is None or profile.relay is None:
            raise EmulationError(f"device {device.id}: a relay board needs a modbus block and a relay profile")
        relay = profile.relay
        spec = RelayBoardSpec(channels=relay.channels, coil_base=relay.coil_base,
                              discrete_input_base=relay.discrete_input_base or 0,
                              watchdog_register=relay.watchdog_register, watchdog_unit_s=relay.watchdog_unit_s,
                              power_on_energised=relay.power_on_energised)
        return RelayBoardEmulator(spec, host=modbus.host, port=modbus.port, unit_id=modbus.unit_id or 1)

    def _disconnects(self, device_id: str) -> bool:
        """True when an energised output of the board disconnects its circuit."""
        device = next(d for _n, d in self.site.all_devices() if d.id == device_id)
        relay = self.site.device_profiles[device.profile].relay
        return relay is None or relay.energised_means == "disconnect"

    # -- routers --------------------------------------------------------------------------
    def _pki(self) -> Path:
        """Create every router's client and server certificates; return the trust folder."""
        trusted = _resolve(self.base_dir, self.site.emulation.certificate_dir) / "trusted"
        for _node, router in self.site.routers():
            ua = router.protocol.opcua
            if ua is None or ua.security_mode == "None":
                continue
            client_cert = _resolve(self.base_dir, ua.certificate_path)
            make_certificate_at(client_cert, _resolve(self.base_dir, ua.private_key_path), CLIENT_URI, server=False)
            trust(trusted, client_cert)
            server_cert = self._server_cert_path(router)
            make_certificate_at(server_cert, self._server_key_path(server_cert), SERVER_URI, server=True)
        return trusted

    def _server_cert_path(self, router: RouterDevice) -> Path:
        ua = router.protocol.opcua
        folder = _resolve(self.base_dir, self.site.emulation.certificate_dir)
        return _resolve(self.base_dir, ua.server_certificate_path) or folder / "router-server-cert.der"

    @staticmethod
    def _server_key_path(cert: Path) -> Path:
        return cert.with_name(cert.stem.removesuffix("-cert") + "-key.pem")

    def _router(self, router: RouterDevice, model: _NodeModel, trusted: Path) -> RouterEmulator:
        ua = router.protocol.opcua
        if ua is None:
            raise EmulationError(f"router {router.id}: needs an opcua protocol block")
        if ua.security_mode == "None":
            raise EmulationError(f"router {router.id}: the emulated router only serves SignAndEncrypt")
        server_cert = self._server_cert_path(router)
        users = {}
        if ua.identity.kind == "username":
            users[ua.identity.username] = os.environ.get(ua.identity.password_env or "", "")
        security = RouterSecurity(server_cert, self._server_key_path(server_cert), trusted,
                                  identity="username" if ua.identity.kind == "username" else "x509", users=users)
        legs = [self._leg(leg, model) for leg in router.legs]
        profile = self.site.device_profiles.get(router.profile)
        host = urlparse(ua.endpoint_url).hostname or "127.0.0.1"
        if host not in ("127.0.0.1", "localhost", "::1"):
            log.warning("router %s endpoint host %s is not loopback", router.id, host)
        return RouterEmulator(
            ua.endpoint_url, legs, security,
            identity=(profile.vendor if profile else "gridctl", router.profile, router.serial or f"EMU-{router.id}"),
            rated_kw=router.rating.rated_kw,
            heartbeat_timeout_s=int(profile.revert_timeout_s) if profile else 30,
            time_scale=self.time_scale, clock=self.clock,
        )

    @staticmethod
    def _leg(leg, model: _NodeModel) -> RouterLegState:  # noqa: ANN001 - config leg
        spec = RouterLegSpec(leg.id, leg.capacity_kw)
        if leg.kind == "node":
            return RouterLegState(spec, "node", default_kw=lambda _t: -model.load_kw)
        if leg.kind == "pv":
            return RouterLegState(spec, "pv", default_kw=lambda _t: model.pv_kw([leg.device]))
        if leg.kind == "battery":
            return RouterLegState(spec, "battery", default_kw=lambda _t: model.battery_kw([leg.device]))
        if leg.kind == "grid":
            return RouterLegState(spec, "grid", CounterPair(0.0, 3000.0, 1000.0))
        state = RouterLegState(spec, leg.kind)
        if leg.kind == "link":
            model.link_legs.append(state)
        return state


def build_site(site: SiteConfig, **kw: object) -> EmulatedSite:
    """An :class:`EmulatedSite` for ``site`` (not yet started); see :class:`SiteBuilder`."""
    return SiteBuilder(site, **kw).build()


async def run_site(site: SiteConfig, stop: asyncio.Event, *, on_ready: Callable[[EmulatedSite], None] | None = None,
                   **kw: object) -> None:
    """Start the site, call ``on_ready``, serve until ``stop`` is set, then stop everything."""
    emulated = build_site(site, **kw)
    try:
        await emulated.start()
        if on_ready is not None:
            on_ready(emulated)
        await stop.wait()
    finally:
        await emulated.stop()

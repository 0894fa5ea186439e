"""Emulated digital grid router on an asyncua OPC UA server, secure by default.

Serves gridctl's router information model (``drivers.opcua.infomodel``,
``docs/router-information-model.md``). Security: only Basic256Sha256 SignAndEncrypt endpoints,
only X.509 (or user name) identities, client certificates checked against a trust folder, and
the role-based ruleset that gives anonymous sessions no rights; a client that skips its own
endpoint check and opens a None channel with an anonymous session is refused.

Physics: every non-grid leg follows its setpoint when enabled, else its default (PV available,
node load, battery idle, links idle); the grid leg balances the router (lossless) while the
grid is connected. Leg counters come from ``sim.plant.devices.step_counters``. Setpoints are
released when the controller heartbeat stops for longer than the heartbeat timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from asyncua import Server, ua
from asyncua.crypto.permission_rules import SimpleRoleRuleset, User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.user_managers import CertificateUserManager

from drivers.opcua import infomodel as im
from sim.emulators.certs import SERVER_URI
from sim.plant.devices import CounterPair, RouterLegSpec, leg_power_kw, step_counters

log = logging.getLogger(__name__)

_VARIANT = {"String": ua.VariantType.String, "Float": ua.VariantType.Float, "Double": ua.VariantType.Double,
            "Boolean": ua.VariantType.Boolean, "UInt32": ua.VariantType.UInt32}


@dataclass
class RouterLegState:
    """One emulated leg: rating, counters, setpoint, default behaviour."""

    spec: RouterLegSpec
    kind: str
    counters: CounterPair = field(default_factory=CounterPair)
    default_kw: Callable[[float], float] = lambda _t: 0.0
    setpoint_kw: float | None = None


@dataclass
class RouterSecurity:
    """Server security settings.

    Attributes
    ----------
    certificate_path, private_key_path : Path
        Server application certificate (DER) and key (PEM).
    trusted_dir : Path
        Folder of trusted client certificates (must hold at least one: asyncua will not start
        with an empty trust folder).
    identity : str
        ``x509`` (client certificates from ``trusted_dir`` are the users) or ``username``.
    users : dict of str to str
        User name -> password for the ``username`` identity.
    """

    certificate_path: Path
    private_key_path: Path
    trusted_dir: Path
    identity: str = "x509"
    users: dict[str, str] = field(default_factory=dict)


class _PasswordUsers:
    """User manager for user-name identities; anything else is refused."""

    def __init__(self, users: dict[str, str]) -> None:
        self._users = users

    def get_user(self, iserver, username=None, password=None, certificate=None):  # noqa: ANN001, ANN201
        if username is not None and self._users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


class RouterEmulator:
    """An emulated router on ``endpoint_url``.

    Parameters
    ----------
    endpoint_url : str
    legs : sequence of RouterLegState
    security : RouterSecurity
    identity : tuple of str
        (manufacturer, model, serial).
    rated_kw : float
    heartbeat_timeout_s : int
    tick_s : float
        Physics and value refresh period [s] (wall clock).
    time_scale : float
        Simulated seconds per wall second for the energy counters.
    """

    def __init__(
        self,
        endpoint_url: str,
        legs: Sequence[RouterLegState],
        security: RouterSecurity,
        *,
        identity: tuple[str, str, str] = ("gridctl", "emulated-dgr", "DGR-0001"),
        rated_kw: float = 10.0,
        heartbeat_timeout_s: int = 30,
        tick_s: float = 0.2,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.legs = {leg.spec.leg_id: leg for leg in legs}
        self.security = security
        self.identity = identity
        self.rated_kw = rated_kw
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.tick_s = tick_s
        self.time_scale = time_scale
        self.grid_connected = True
        self.grid_voltage_v = 202.0
        self.grid_frequency_hz = 50.0
        self._clock = clock
        self._t0 = clock()
        self._last_s = 0.0
        self._last_beat: int | None = None
        self._last_beat_wall = clock()
        self.failsafe_active = False
        self._server: Server | None = None
        self._ns = 0
        self._nodes: dict[str, object] = {}
        self._task: asyncio.Task | None = None

    # -- lifecycle ------------------------------------------------------------------------
    async def _secure(self, server: Server) -> None:
        sec = self.security
        server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt],
                                   permission_ruleset=SimpleRoleRuleset())
        token = ua.X509IdentityToken if sec.identity == "x509" else ua.UserNameIdentityToken
        server.set_identity_tokens([token])
        await server.load_certificate(str(sec.certificate_path))
        await server.load_private_key(str(sec.private_key_path))
        trust = TrustStore([sec.trusted_dir], [])
        await trust.load()
        options = CertificateValidatorOptions.TRUSTED_VALIDATION | CertificateValidatorOptions.PEER_CLIENT
        server.set_certificate_validator(CertificateValidator(options, trust))

    async def _user_manager(self):  # noqa: ANN202
        sec = self.security
        if sec.identity != "x509":
            return _PasswordUsers(sec.users)
        users = CertificateUserManager()
        for index, path in enumerate(sorted(sec.trusted_dir.iterdir())):
            if path.is_file():
                await users.add_user(path, name=f"client-{index}")
        return users

    async def start(self) -> None:
        """Build the address space and start serving."""
        server = Server(user_manager=await self._user_manager())
        # Building asyncua's standard address space dominates start-up (seconds, CPU-bound);
        # its shelf cache was measured slower here, so it is not used.
        await server.init()
        server.set_endpoint(self.endpoint_url)
        server.set_server_name(f"gridctl emulated router {self.identity[2]}")
        await server.set_application_uri(SERVER_URI)
        await self._secure(server)
        self._ns = await server.register_namespace(im.NAMESPACE_URI)
        await self._build(server)
        await server.start()
        self._server = server
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop serving."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
            self._task = None
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def _var(self, parent, ident: str, name: str, value, type_name: str, writable: bool = False):  # noqa: ANN001, ANN202
        node = await parent.add_variable(ua.NodeId(ident, self._ns), ua.QualifiedName(name, self._ns),
                                         ua.Variant(value, _VARIANT[type_name]))
        if writable:
            await node.set_writable(True)
        self._nodes[ident] = node
        return node

    async def _build(self, server: Server) -> None:
        ns = self._ns
        router = await server.nodes.objects.add_object(ua.NodeId(im.ROUTER, ns), ua.QualifiedName("Router", ns))
        ident = await router.add_object(ua.NodeId("Router.Identity", ns), ua.QualifiedName("Identity", ns))
        for node_id, value in ((im.IDENTITY_MANUFACTURER, self.identity[0]), (im.IDENTITY_MODEL, self.identity[1]),
                               (im.IDENTITY_SERIAL, self.identity[2]), (im.IDENTITY_MODEL_VERSION, im.MODEL_VERSION)):
            await self._var(ident, node_id, node_id.rsplit(".", 1)[1], value, "String")
        await self._var(ident, im.RATED_POWER, "RatedPower_kW", float(self.rated_kw), "Float")
        state = await router.add_object(ua.NodeId("Router.State", ns), ua.QualifiedName("State", ns))
        await self._var(state, im.STATE_GRID_CONNECTED, "GridConnected", True, "Boolean")
        await self._var(state, im.STATE_GRID_VOLTAGE, "GridVoltage_V", self.grid_voltage_v, "Float")
        await self._var(state, im.STATE_GRID_FREQUENCY, "GridFrequency_Hz", self.grid_frequency_hz, "Float")
        hb = await router.add_object(ua.NodeId("Router.Heartbeat", ns), ua.QualifiedName("Heartbeat", ns))
        await self._var(hb, im.HEARTBEAT_CONTROLLER, "Controller", 0, "UInt32", writable=True)
        await self._var(hb, im.HEARTBEAT_TIMEOUT, "Timeout_s", self.heartbeat_timeout_s, "UInt32")
        await self._var(hb, im.HEARTBEAT_FAILSAFE, "FailSafeActive", False, "Boolean")
        legs = await router.add_folder(ua.NodeId(im.LEGS, ns), ua.QualifiedName("Legs", ns))
        await self._var(legs, im.LEG_IDS, "LegIds", list(self.legs), "String")
        for leg_id, leg in self.legs.items():
            obj = await legs.add_object(ua.NodeId(f"{im.LEGS}.{leg_id}", ns), ua.QualifiedName(leg_id, ns))
            initial = {"Kind": leg.kind, "Power_kW": 0.0, "Limit_kW": float(leg.spec.limit_kw), "Setpoint_kW": 0.0,
                       "SetpointEnabled": False, "ImportEnergy_kWh": leg.counters.import_kwh,
                       "ExportEnergy_kWh": leg.counters.export_kwh}
            for var, (type_name, writable) in im.LEG_VARIABLES.items():
                await self._var(obj, im.leg_node(leg_id, var), var, initial[var], type_name, writable)

    # -- physics --------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # noqa: BLE001 - an emulator keeps serving whatever happens
                log.exception("router emulator tick failed endpoint=%s", self.endpoint_url)
            await asyncio.sleep(self.tick_s)

    # Direct attribute access (no internal session round trip): the tick touches ~30 values.
    async def _read(self, ident: str):  # noqa: ANN202
        assert self._server is not None
        return self._server.read_attribute_value(ua.NodeId(ident, self._ns)).Value.Value

    async def _write(self, ident: str, value, type_name: str) -> None:  # noqa: ANN001
        assert self._server is not None
        await self._server.write_attribute_value(ua.NodeId(ident, self._ns),
                                                 ua.DataValue(ua.Variant(value, _VARIANT[type_name])))

    async def tick(self) -> None:
        """Take setpoints and heartbeat from the address space, step physics, publish values."""
        wall = self._clock()
        beat = await self._read(im.HEARTBEAT_CONTROLLER)
        if beat != self._last_beat:
            self._last_beat, self._last_beat_wall = beat, wall
        any_enabled = False
        for leg_id, leg in self.legs.items():
            enabled = await self._read(im.leg_node(leg_id, "SetpointEnabled"))
            any_enabled |= bool(enabled)
            leg.setpoint_kw = float(await self._read(im.leg_node(leg_id, "Setpoint_kW"))) if enabled else None
        self.failsafe_active = any_enabled and wall - self._last_beat_wall > self.heartbeat_timeout_s
        if self.failsafe_active:
            for leg in self.legs.values():
                leg.setpoint_kw = None
        self.step((wall - self._t0) * self.time_scale)
        await self._publish()

    def step(self, now_s: float) -> None:
        """Advance leg powers and counters to simulated time ``now_s`` [s]."""
        dt = max(0.0, now_s - self._last_s)
        self._last_s = now_s
        powers: dict[str, float] = {}
        for leg_id, leg in self.legs.items():
            if leg.kind == "grid":
                continue
            wanted = leg.setpoint_kw if leg.setpoint_kw is not None else leg.default_kw(now_s)
            powers[leg_id] = leg_power_kw(leg.spec, wanted)
        for leg_id, leg in self.legs.items():
            if leg.kind == "grid":
                balance = -sum(powers.values()) if self.grid_connected else 0.0
                powers[leg_id] = leg_power_kw(leg.spec, balance)
        for leg_id, leg in self.legs.items():
            leg.counters = step_counters(leg.counters, powers[leg_id], dt)

    async def _publish(self) -> None:
        await self._write(im.STATE_GRID_CONNECTED, self.grid_connected, "Boolean")
        await self._write(im.STATE_GRID_VOLTAGE, self.grid_voltage_v, "Float")
        await self._write(im.STATE_GRID_FREQUENCY, self.grid_frequency_hz, "Float")
        await self._write(im.HEARTBEAT_FAILSAFE, self.failsafe_active, "Boolean")
        for leg_id, leg in self.legs.items():
            await self._write(im.leg_node(leg_id, "Power_kW"), leg.counters.power_kw, "Float")
            await self._write(im.leg_node(leg_id, "ImportEnergy_kWh"), leg.counters.import_kwh, "Double")
            await self._write(im.leg_node(leg_id, "ExportEnergy_kWh"), leg.counters.export_kwh, "Double")

"""Router driver: gridctl's router information model over OPC UA (asyncua client).

Secure by default: Basic256Sha256 SignAndEncrypt with an X.509 application certificate that is
also the user identity. Before opening a session the driver lists the server's endpoints and
refuses to connect when the configured policy and mode are not offered: there is no silent
downgrade. A pinned server certificate must match the one the server presents.

Node data types are read once at connect and every write sends a variant of that type (a Python
float would go out as Double and a Float node answers BadTypeMismatch). Reads are batched into
one Read request per snapshot. A transient failure drops the session; the next call reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

from asyncua import Client, Node, ua
from asyncua.crypto import security_policies, uacrypto
from cryptography import x509

from drivers import errors
from drivers.capabilities import DeviceIdentity, DeviceReading, EnergyCounters, GridState, LegReading
from drivers.errors import DeviceError, PermanentDeviceError, TransientDeviceError
from drivers.opcua import infomodel as im
from drivers.profile import OpcUaEndpoint

log = logging.getLogger(__name__)

T = TypeVar("T")

_POLICIES = {
    "Basic256Sha256": security_policies.SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": security_policies.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": security_policies.SecurityPolicyAes256Sha256RsaPss,
}
_MODES = {
    "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt,
    "Sign": ua.MessageSecurityMode.Sign,
    "None": ua.MessageSecurityMode.None_,
}
_LEG_READ = ("Power_kW", "ImportEnergy_kWh", "ExportEnergy_kWh", "Limit_kW", "Setpoint_kW", "SetpointEnabled")
_REJECTION_WORDS = ("Certificate", "Security", "Identity", "UserAccessDenied", "UserSignature")


def _policy_uri(name: str) -> str:
    return security_policies.SecurityPolicyNone.URI if name == "None" else _POLICIES[name].URI


def _application_uri(cert_path: str) -> str | None:
    """The URI in a certificate's subject alternative names (OPC UA requires it to match)."""
    data = open(cert_path, "rb").read()  # noqa: PTH123, SIM115 - small file, read once at connect
    cert = x509.load_pem_x509_certificate(data) if data.startswith(b"-----") else x509.load_der_x509_certificate(data)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def _number(value: object) -> float | None:
    """A finite float, or None for missing, non-numeric, NaN or infinite values (never passed on)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


class OpcUaRouter:
    """A digital grid router reached over OPC UA.

    Parameters
    ----------
    endpoint : OpcUaEndpoint
    name : str or None
        Device name for messages.
    retries : int
        Extra attempts of a transient failure, each after reconnecting.
    backoff_s : float
        First retry delay [s], doubled per attempt.
    """

    def __init__(self, endpoint: OpcUaEndpoint, *, name: str | None = None, retries: int = 1,
                 backoff_s: float = 0.2) -> None:
        self.endpoint = endpoint
        self.name = name or endpoint.endpoint_url
        self.retries = retries
        self.backoff_s = backoff_s
        self.leg_ids: tuple[str, ...] = ()
        self.leg_kinds: dict[str, str] = {}
        self._client: Client | None = None
        self._ns = 0
        self._types: dict[str, ua.VariantType] = {}
        self._lock = asyncio.Lock()
        self._beat = 0

    # -- errors ---------------------------------------------------------------------------
    def _map_error(self, exc: BaseException, doing: str) -> DeviceError:
        if isinstance(exc, DeviceError):
            return exc
        if isinstance(exc, ConnectionRefusedError):
            return TransientDeviceError(self.name, errors.CONNECTION_REFUSED, "connection refused")
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
            return TransientDeviceError(self.name, errors.TIMEOUT, f"timed out {doing}")
        if isinstance(exc, ua.UaStatusCodeError):
            status = type(exc).__name__
            if any(word in status for word in _REJECTION_WORDS):
                return PermanentDeviceError(self.name, errors.CERTIFICATE_REJECTED,
                                            f"server rejected our credentials ({status}) {doing}")
            if "TypeMismatch" in status:
                return PermanentDeviceError(self.name, errors.TYPE_MISMATCH, f"{status} {doing}")
            if "NodeIdUnknown" in status:
                return PermanentDeviceError(self.name, errors.MODEL_MISSING,
                                            f"router information model node missing ({status}) {doing}")
            return TransientDeviceError(self.name, errors.CONNECTION_LOST, f"{status} {doing}")
        return TransientDeviceError(self.name, errors.CONNECTION_LOST, f"{type(exc).__name__}: {exc} {doing}")

    # -- connection -----------------------------------------------------------------------
    async def _check_endpoints(self) -> None:
        """List the server's endpoints over a discovery channel and refuse any downgrade."""
        ep = self.endpoint
        probe = Client(ep.endpoint_url, timeout=ep.timeout_s)
        try:
            endpoints = await probe.connect_and_get_server_endpoints()
        except BaseException as exc:  # noqa: BLE001 - mapped to a driver error
            raise self._map_error(exc, "listing endpoints") from exc
        wanted_uri, wanted_mode = _policy_uri(ep.security_policy), _MODES[ep.security_mode]
        offered = [(e.SecurityPolicyUri.rsplit("#", 1)[-1], e.SecurityMode.name) for e in endpoints]
        match = [e for e in endpoints if e.SecurityPolicyUri == wanted_uri and e.SecurityMode == wanted_mode]
        if not match:
            raise PermanentDeviceError(
                self.name, errors.SECURITY_NOT_OFFERED,
                f"server does not offer {ep.security_policy}/{ep.security_mode} (offers {offered}); refusing to connect",
            )
        if ep.server_certificate_path and wanted_mode != ua.MessageSecurityMode.None_:
            pinned = uacrypto.der_from_x509(await uacrypto.load_certificate(ep.server_certificate_path))
            if bytes(match[0].ServerCertificate) != pinned:
                raise PermanentDeviceError(
                    self.name, errors.CERTIFICATE_REJECTED,
                    f"server certificate differs from the pinned {ep.server_certificate_path}",
                )

    def _check_files(self) -> None:
        ep = self.endpoint
        for label, path in (("certificate", ep.certificate_path), ("private key", ep.private_key_path),
                            ("server certificate", ep.server_certificate_path)):
            if path is not None and not os.path.isfile(path):
                raise PermanentDeviceError(self.name, errors.BAD_CONFIGURATION, f"{label} file not found: {path}")

    async def _new_client(self) -> Client:
        ep = self.endpoint
        client = Client(ep.endpoint_url, timeout=ep.timeout_s)
        if ep.certificate_path:
            client.application_uri = _application_uri(ep.certificate_path) or client.application_uri
        if ep.security_mode != "None":
            if not (ep.certificate_path and ep.private_key_path):
                raise PermanentDeviceError(self.name, errors.BAD_CONFIGURATION, "secure mode needs a certificate and key")
            await client.set_security(
                _POLICIES[ep.security_policy], ep.certificate_path, ep.private_key_path,
                server_certificate=ep.server_certificate_path, mode=_MODES[ep.security_mode],
            )
        if ep.identity == "x509":
            if not (ep.certificate_path and ep.private_key_path):
                raise PermanentDeviceError(self.name, errors.BAD_CONFIGURATION, "x509 identity needs a certificate and key")
            await client.load_client_certificate(ep.certificate_path)
            await client.load_private_key(ep.private_key_path)
        elif ep.identity == "username":
            client.set_user(ep.username or "")
            client.set_password(ep.password or "")
        return client

    async def _open(self) -> None:
        if self._client is not None:
            return
        self._check_files()
        await self._check_endpoints()
        try:
            client = await self._new_client()
            await client.connect()
        except BaseException as exc:  # noqa: BLE001 - mapped to a driver error
            raise self._map_error(exc, "opening a session") from exc
        self._client = client
        try:
            await self._discover()
        except BaseException as exc:  # noqa: BLE001
            await self._drop()
            raise self._map_error(exc, "reading the information model") from exc

    async def _discover(self) -> None:
        assert self._client is not None
        client = self._client
        try:
            self._ns = await client.get_namespace_index(im.NAMESPACE_URI)
        except ValueError as exc:
            raise PermanentDeviceError(self.name, errors.MODEL_MISSING,
                                       f"server has no namespace {im.NAMESPACE_URI}") from exc
        self.leg_ids = tuple(await self._node(im.LEG_IDS).read_value())
        kinds = await client.read_values([self._node(im.leg_node(leg, "Kind")) for leg in self.leg_ids])
        self.leg_kinds = dict(zip(self.leg_ids, kinds, strict=True))
        writable = [im.HEARTBEAT_CONTROLLER] + [
            im.leg_node(leg, var) for leg in self.leg_ids for var, (_, w) in im.LEG_VARIABLES.items() if w
        ]
        for ident in writable:
            self._types[ident] = await self._node(ident).read_data_type_as_variant_type()
        self._beat = int(await self._node(im.HEARTBEAT_CONTROLLER).read_value())

    def _node(self, ident: str) -> Node:
        assert self._client is not None
        return self._client.get_node(ua.NodeId(ident, self._ns))

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.disconnect()
            except BaseException:  # noqa: BLE001 - the connection is already broken
                pass

    async def connect(self) -> None:
        """Check security, open a session, read the model's legs and data types."""
        async with self._lock:
            await self._drop()
            await self._open()

    async def close(self) -> None:
        async with self._lock:
            await self._drop()

    async def _call(self, op: Callable[[], Awaitable[T]], doing: str) -> T:
        async with self._lock:
            for attempt in range(self.retries + 1):
                try:
                    await self._open()
                    return await op()
                except BaseException as exc:  # noqa: BLE001 - mapped below
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    err = self._map_error(exc, doing)
                    if isinstance(err, PermanentDeviceError) or attempt >= self.retries:
                        if isinstance(err, TransientDeviceError):
                            await self._drop()
                        raise err from exc
                    await self._drop()
                    await asyncio.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    # -- reads ----------------------------------------------------------------------------
    async def read_identity(self) -> DeviceIdentity:
        """Manufacturer, model, serial and information model version."""
        async def op() -> DeviceIdentity:
            values = await self._client.read_values([self._node(n) for n in (
                im.IDENTITY_MANUFACTURER, im.IDENTITY_MODEL, im.IDENTITY_SERIAL, im.IDENTITY_MODEL_VERSION)])
            return DeviceIdentity(*values)
        return await self._call(op, "reading identity")

    async def read_rated_kw(self) -> float:
        """Converter rating [kW]."""
        return float(await self._call(lambda: self._node(im.RATED_POWER).read_value(), "reading rating"))

    async def read_snapshot(self) -> DeviceReading:
        """Grid state and every leg in one Read request."""
        async def op() -> DeviceReading:
            idents = [im.STATE_GRID_CONNECTED, im.STATE_GRID_VOLTAGE, im.STATE_GRID_FREQUENCY, im.HEARTBEAT_FAILSAFE]
            idents += [im.leg_node(leg, var) for leg in self.leg_ids for var in _LEG_READ]
            values = await self._client.read_values([self._node(i) for i in idents])
            got = dict(zip(idents, values, strict=True))
            legs = {leg: self._leg(leg, got) for leg in self.leg_ids}
            notes = ("router fail-safe active (heartbeat timed out)",) if got[im.HEARTBEAT_FAILSAFE] else ()
            connected = got[im.STATE_GRID_CONNECTED]
            grid = GridState(connected if isinstance(connected, bool) else None,
                             _number(got[im.STATE_GRID_VOLTAGE]), _number(got[im.STATE_GRID_FREQUENCY]))
            return DeviceReading(grid=grid, legs=legs, notes=notes)
        return await self._call(op, "reading legs")

    @staticmethod
    def _leg(leg: str, got: dict) -> LegReading:
        val = lambda var: got[im.leg_node(leg, var)]  # noqa: E731
        return LegReading(
            leg_id=leg, power_kw=_number(val("Power_kW")),
            counters=EnergyCounters(_number(val("ImportEnergy_kWh")), _number(val("ExportEnergy_kWh"))),
            limit_kw=_number(val("Limit_kW")),
            setpoint_kw=_number(val("Setpoint_kW")) if val("SetpointEnabled") is True else None,
        )

    async def read_legs(self) -> dict[str, LegReading]:
        return (await self.read_snapshot()).legs

    async def read_grid_state(self) -> GridState:
        return (await self.read_snapshot()).grid or GridState(None, None, None)

    async def read_heartbeat_timeout_s(self) -> int:
        """The router's fail-safe delay [s] after the last heartbeat."""
        return int(await self._call(lambda: self._node(im.HEARTBEAT_TIMEOUT).read_value(), "reading heartbeat"))

    # -- writes ---------------------------------------------------------------------------
    def _variant(self, ident: str, value: object) -> ua.DataValue:
        return ua.DataValue(ua.Variant(value, self._types[ident]))

    async def write_leg_power_kw(self, leg_id: str, power_kw: float | None) -> None:
        """Set a leg's setpoint [kW] (positive into the router); None releases it."""
        if leg_id not in self.leg_ids:
            raise PermanentDeviceError(self.name, errors.MODEL_MISSING, f"router has no leg {leg_id!r}")

        async def op() -> None:
            sp, en = im.leg_node(leg_id, "Setpoint_kW"), im.leg_node(leg_id, "SetpointEnabled")
            nodes = [self._node(sp), self._node(en)]
            values = [self._variant(sp, float(power_kw or 0.0)), self._variant(en, power_kw is not None)]
            await self._client.write_values(nodes, values)
        await self._call(op, f"writing leg {leg_id}")

    async def write_heartbeat(self) -> None:
        """Increment the controller heartbeat the router watches."""
        async def op() -> None:
            self._beat = (self._beat + 1) % 2**32
            ident = im.HEARTBEAT_CONTROLLER
            await self._node(ident).write_value(self._variant(ident, self._beat))
        await self._call(op, "writing heartbeat")

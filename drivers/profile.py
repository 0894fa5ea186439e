"""Driver-level connection settings and vendor quirks, as plain frozen dataclasses.

The application maps its validated configuration onto these; drivers never read config files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Base addresses where a SunSpec map may start, in discovery order.
SUNSPEC_BASE_ADDRESSES: tuple[int, ...] = (40000, 0, 50000)

ControlMethod = Literal["auto", "123_124", "704_802"]


@dataclass(frozen=True)
class TlsSettings:
    """Modbus/TCP Security (TLS with a client certificate).

    Attributes
    ----------
    ca_path : str or None
        CA bundle that signed the device's certificate (PEM); None trusts the system store.
    certificate_path, private_key_path : str or None
        Client certificate and key (PEM) for mutual TLS.
    """

    ca_path: str | None = None
    certificate_path: str | None = None
    private_key_path: str | None = None


@dataclass(frozen=True)
class ModbusEndpoint:
    """Where a SunSpec Modbus device is.

    Attributes
    ----------
    host : str
    port : int
    unit_id : int
        Modbus unit (device) id, 1-247.
    base_address : int or None
        SunSpec base register; None discovers it at 40000, 0 and 50000.
    timeout_s : float
        Per-request timeout [s].
    tls : TlsSettings or None
        None for plain Modbus/TCP.
    """

    host: str
    port: int = 502
    unit_id: int = 1
    base_address: int | None = None
    timeout_s: float = 2.0
    tls: TlsSettings | None = None

    @property
    def label(self) -> str:
        """``host:port/unit`` for messages."""
        return f"{self.host}:{self.port}/unit {self.unit_id}"


@dataclass(frozen=True)
class DeviceQuirks:
    """Vendor quirks of one device model (from a device profile).

    Attributes
    ----------
    power_sign : int
        +1 or -1: multiplies the device's native power to get supply-positive power.
    swap_counters : bool
        True when the device's native import/export (or charge/discharge) counters are swapped
        relative to supply-positive.
    models : tuple of int
        SunSpec models to prefer for readings, in order (empty: the driver's default order).
    control : str
        ``auto`` (704/802 when present, else 123/124), ``123_124`` or ``704_802``.
    inter_request_delay_s : float
        Pause between two requests to the device [s] (slow RS485 gateways).
    retries : int
        Extra attempts for a transient failure, each after reconnecting.
    backoff_s : float
        First retry delay [s], doubled per attempt.
    max_registers_per_read : int
        Largest register block read in one request (at most 125).
    plausible_power_kw : float or None
        Magnitude above which a power reading is garbage and dropped [kW] (None: no bound).
    """

    power_sign: int = 1
    swap_counters: bool = False
    models: tuple[int, ...] = ()
    control: ControlMethod = "auto"
    inter_request_delay_s: float = 0.0
    retries: int = 2
    backoff_s: float = 0.05
    max_registers_per_read: int = 125
    plausible_power_kw: float | None = None

    def __post_init__(self) -> None:
        if self.power_sign not in (1, -1):
            raise ValueError(f"power_sign must be +1 or -1, got {self.power_sign}")
        if not 1 <= self.max_registers_per_read <= 125:
            raise ValueError("max_registers_per_read must be within 1..125")


@dataclass(frozen=True)
class OpcUaEndpoint:
    """Where a router's OPC UA server is and how to authenticate.

    Attributes
    ----------
    endpoint_url : str
        ``opc.tcp://host:port/path``.
    security_policy : str
        ``Basic256Sha256`` (default) or ``None`` (only if explicitly configured).
    security_mode : str
        ``SignAndEncrypt`` (default), ``Sign`` or ``None``.
    certificate_path, private_key_path : str or None
        Client application certificate (DER or PEM) and key; also the X.509 user identity.
    server_certificate_path : str or None
        Expected server certificate; the connection is refused if the server presents another.
    identity : str
        ``x509`` (the client certificate), ``username`` or ``anonymous``.
    username, password : str or None
        Credentials for the ``username`` identity.
    timeout_s : float
        Request timeout [s].
    """

    endpoint_url: str
    security_policy: str = "Basic256Sha256"
    security_mode: str = "SignAndEncrypt"
    certificate_path: str | None = None
    private_key_path: str | None = None
    server_certificate_path: str | None = None
    identity: str = "x509"
    username: str | None = None
    password: str | None = None
    timeout_s: float = 4.0


#: The ECHONET Lite UDP port (unicast and multicast group 224.0.23.0).
ECHONET_PORT = 3610


@dataclass(frozen=True)
class EchonetEndpoint:
    """Where one ECHONET Lite object is.

    Attributes
    ----------
    host : str
        The node's IP address (unicast; ECHONET Lite has no host names on the wire).
    port : int
        UDP port of the node (3610; emulators on loopback may use others).
    instance : int
        Instance code of the object on the node (the third byte of its EOJ), 1-127.
    timeout_s : float
        Per-request timeout [s].
    """

    host: str
    port: int = ECHONET_PORT
    instance: int = 1
    timeout_s: float = 2.0

    @property
    def label(self) -> str:
        """``host:port#instance`` for messages."""
        return f"{self.host}:{self.port}#{self.instance}"

"""Device configuration: protocol blocks, ratings and the device kinds of a node.

A device names a profile (``configs/devices/*.yaml``) that carries vendor knowledge as data:
which SunSpec models to use, sign flips and quirks. Ratings are the physical limits gridctl
clamps every setpoint to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from gridctl.config.base import (
    CostJpyPerKwh,
    DeviceTimerS,
    EnergyKwh,
    Identifier,
    Percent,
    PositivePercent,
    PowerKw,
    StrictModel,
)
from gridctl.config.echonet import MAX_REQUEST_TIMEOUT_S, EchonetProfile, EchonetProtocol


class ModbusTls(StrictModel):
    """Modbus/TCP Security (TLS with mutual certificates, usually port 802)."""

    certificate_path: Path = Field(description="client certificate, PEM")
    private_key_path: Path = Field(description="client private key, PEM")
    ca_path: Path = Field(description="CA certificate(s) that sign the device's certificate, PEM")


class ModbusProtocol(StrictModel):
    """SunSpec over Modbus TCP."""

    host: str = Field(min_length=1, description="device host name or IP address")
    port: int = Field(default=502, ge=1, le=65535)
    unit_id: int = Field(default=1, ge=0, le=247, description="Modbus unit (device) id")
    base_address: Literal[0, 40000, 50000] | None = Field(
        default=None, description="SunSpec base register; null: discover 40000, 0, 50000"
    )
    timeout_s: float = Field(default=1.0, gt=0, le=MAX_REQUEST_TIMEOUT_S,
                             description="per-request timeout [s]")
    tls: ModbusTls | None = None


class OpcuaIdentity(StrictModel):
    """User identity presented in the OPC UA session."""

    kind: Literal["x509", "username", "anonymous"] = "x509"
    username: str | None = None
    password_credential: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.-]+$",
        description="systemd credential id holding the password ($CREDENTIALS_DIRECTORY/ID); "
                    "wins over password_env",
    )
    password_env: str | None = Field(
        default=None, description="environment variable that holds the password (never the file)"
    )

    @model_validator(mode="after")
    def _username_needs_name(self) -> OpcuaIdentity:
        if self.kind == "username" and not (
                self.username and (self.password_credential or self.password_env)):
            raise ValueError("identity kind 'username' needs username and password_credential "
                             "(or password_env)")
        return self


SecurityPolicy = Literal["Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss", "None"]


class OpcuaProtocol(StrictModel):
    """OPC UA client settings for a router. Secure by default: Basic256Sha256, SignAndEncrypt."""

    endpoint_url: str = Field(pattern=r"^opc\.tcp://[^\s/]+(:\d+)?(/.*)?$")
    security_policy: SecurityPolicy = "Basic256Sha256"
    security_mode: Literal["SignAndEncrypt", "Sign", "None"] = "SignAndEncrypt"
    certificate_path: Path | None = Field(default=None, description="client certificate, DER or PEM")
    private_key_path: Path | None = Field(default=None, description="client private key, PEM")
    server_certificate_path: Path | None = Field(
        default=None, description="the server certificate to trust (pinning)"
    )
    identity: OpcuaIdentity = OpcuaIdentity()
    timeout_s: float = Field(default=2.0, gt=0, le=MAX_REQUEST_TIMEOUT_S,
                             description="per-request timeout [s]")

    @model_validator(mode="after")
    def _security_consistent(self) -> OpcuaProtocol:
        if (self.security_policy == "None") != (self.security_mode == "None"):
            raise ValueError("security_policy and security_mode must both be 'None' or neither")
        if self.security_mode != "None" and not (self.certificate_path and self.private_key_path):
            raise ValueError("a secure channel needs certificate_path and private_key_path")
        if self.identity.kind == "x509" and self.certificate_path is None:
            raise ValueError("identity kind 'x509' needs certificate_path")
        return self


class Protocol(StrictModel):
    """Exactly one transport block."""

    modbus: ModbusProtocol | None = None
    opcua: OpcuaProtocol | None = None
    echonet: EchonetProtocol | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Protocol:
        given = [b for b in (self.modbus, self.opcua, self.echonet) if b is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'modbus', 'opcua' or 'echonet'")
        return self


class PvRating(StrictModel):
    """PV inverter and array."""

    ac_kw: PowerKw = Field(description="inverter AC rating [kW]")
    dc_kwp: PowerKw = Field(description="array peak power [kWp]")
    tilt_deg: float = Field(default=30.0, ge=0, le=90)
    azimuth_deg: float = Field(default=180.0, ge=0, lt=360, description="180 = south")
    ramp_pct_per_s: PositivePercent | None = Field(default=None, description="limit ramp [%/s]")


class BatteryRating(StrictModel):
    """Battery energy storage system."""

    capacity_kwh: EnergyKwh = Field(description="usable nameplate energy [kWh]")
    max_charge_kw: PowerKw
    max_discharge_kw: PowerKw
    charge_efficiency_pct: PositivePercent = 95.0
    discharge_efficiency_pct: PositivePercent = 95.0
    soc_min_pct: Percent = 10.0
    soc_max_pct: Percent = 95.0
    ramp_kw_per_s: PowerKw | None = None
    wear_cost_jpy_per_kwh: CostJpyPerKwh = Field(
        default=2.0, description="throughput wear cost [JPY/kWh discharged]"
    )
    self_discharge_pct_per_day: Percent = 0.1

    @model_validator(mode="after")
    def _soc_order(self) -> BatteryRating:
        if self.soc_min_pct >= self.soc_max_pct:
            raise ValueError(
                f"soc_min_pct ({self.soc_min_pct}) must be below soc_max_pct ({self.soc_max_pct})"
            )
        return self


class MeterRating(StrictModel):
    """Meter (grid connection point or sub-meter)."""

    max_kw: PowerKw | None = Field(default=None, description="plausibility limit [kW]")


class SwitchRating(StrictModel):
    """A load switch: an ECHONET Lite object switched through EPC 0x80 has one channel."""

    channels: Literal[1] = Field(default=1, description="switched channels (an ECHONET object: 1)")


class RelayRating(StrictModel):
    """Relay board: how many output channels of the board this site uses."""

    channels: int = Field(ge=1, le=64, description="output channels wired (0 .. channels-1)")


class RouterRating(StrictModel):
    """Digital grid router converter rating."""

    rated_kw: PowerKw


class _DeviceBase(StrictModel):
    id: Identifier
    profile: Identifier = Field(description="device profile id (configs/devices/*.yaml)")
    protocol: Protocol
    serial: str | None = Field(default=None, description="expected serial number (commissioning)")


class PvInverterDevice(_DeviceBase):
    """Rooftop PV inverter."""

    kind: Literal["pv_inverter"]
    rating: PvRating


class BatteryDevice(_DeviceBase):
    """Home or commercial battery."""

    kind: Literal["battery"]
    rating: BatteryRating


class MeterDevice(_DeviceBase):
    """Meter with cumulative import/export kWh counters."""

    kind: Literal["meter"]
    role: Literal["grid", "load"] = "grid"
    rating: MeterRating = MeterRating()


class SwitchDevice(_DeviceBase):
    """An ECHONET Lite load switch (0x05FD JEM-A/HA terminal, or any appliance switched
    through 0x80); it connects (on) or sheds (off) the circuit behind it."""

    kind: Literal["switch"]
    rating: SwitchRating = SwitchRating()


class RelayBoardDevice(_DeviceBase):
    """Modbus TCP relay board switching sheddable circuits (coils, feedback inputs, watchdog)."""

    kind: Literal["relay_board"]
    rating: RelayRating


#: Device kinds that switch loads (``SwitchesLoads``): a node's ``load.switches`` name them.
#: ``switch`` is the ECHONET Lite switch object (channel 0 only).
SWITCH_KINDS: tuple[str, ...] = ("relay_board", "switch")


class RouterLeg(StrictModel):
    """One port of a digital grid router."""

    id: Identifier
    kind: Literal["grid", "node", "pv", "battery", "link"]
    device: Identifier | None = Field(default=None, description="pv/battery device on this leg")
    link: Identifier | None = Field(default=None, description="link id for a 'link' leg")
    capacity_kw: PowerKw

    @model_validator(mode="after")
    def _references_match_kind(self) -> RouterLeg:
        if self.kind in ("pv", "battery") and self.device is None:
            raise ValueError(f"a '{self.kind}' leg needs 'device'")
        if self.kind == "link" and self.link is None:
            raise ValueError("a 'link' leg needs 'link'")
        if self.kind not in ("pv", "battery") and self.device is not None:
            raise ValueError(f"a '{self.kind}' leg takes no 'device'")
        if self.kind != "link" and self.link is not None:
            raise ValueError(f"a '{self.kind}' leg takes no 'link'")
        return self


class RouterDevice(_DeviceBase):
    """Digital grid router (DGR): a multi-leg converter metered per leg, over OPC UA."""

    kind: Literal["router"]
    rating: RouterRating
    legs: list[RouterLeg] = Field(min_length=1)


def link_leg_ids(device) -> tuple[str, ...]:  # noqa: ANN001 - any configured device
    """The ids of a router's link legs (what a release unsets); () for any other device."""
    return tuple(leg.id for leg in getattr(device, "legs", ()) if leg.kind == "link")


Device = Annotated[
    PvInverterDevice | BatteryDevice | MeterDevice | RouterDevice | RelayBoardDevice | SwitchDevice,
    Field(discriminator="kind"),
]


#: A SunSpec model id (a 16-bit register value).
SunSpecModelId = Annotated[int, Field(ge=1, le=65535)]


class ProfileQuirks(StrictModel):
    """Vendor behaviour the drivers must respect."""

    inter_request_delay_s: float = Field(default=0.0, ge=0, le=10)
    max_registers_per_read: int = Field(default=125, ge=1, le=125)
    single_client: bool = Field(default=False, description="accepts one Modbus client only")


class SignFlips(StrictModel):
    """Device-native signs that differ from gridctl's supply-positive convention."""

    power: bool = Field(default=False, description="device reports/accepts power negated")
    energy_counters: bool = Field(default=False, description="import/export counters swapped")


class RelayBoardProfile(StrictModel):
    """Register map and wiring of a Modbus TCP relay board (device knowledge as data)."""

    channels: int = Field(ge=1, le=64, description="output channels on the board")
    coil_base: int = Field(default=0, ge=0, le=65535, description="coil of channel 0 (FC1/FC5/FC15)")
    discrete_input_base: int | None = Field(
        default=0, ge=0, le=65535,
        description="discrete input of channel 0's contactor feedback (FC2); null: no feedback")
    watchdog_register: int | None = Field(
        default=None, ge=0, le=65535,
        description="holding register of the comm-loss watchdog timeout; null: no watchdog")
    watchdog_unit_s: float = Field(default=1.0, gt=0, le=60,
                                   description="seconds per count of the watchdog register [s]")
    watchdog_timeout_s: float = Field(
        default=30.0, gt=0, le=3600,
        description="timeout written at connect: without a Modbus write for this long the board "
                    "resets its outputs to their power-on state [s]; gridctl re-writes every cycle")
    energised_means: Literal["disconnect", "connect"] = Field(
        default="disconnect",
        description="what an energised output does to its circuit: 'disconnect' (normally-closed "
                    "wiring, loads served when the board is dead) or 'connect' (normally-open)")
    power_on_energised: bool = Field(
        default=False, description="outputs energised at power-on and after a watchdog reset")

    @model_validator(mode="after")
    def _watchdog_fits(self) -> RelayBoardProfile:
        if self.watchdog_register is not None and self.watchdog_timeout_s / self.watchdog_unit_s > 65535:
            raise ValueError("watchdog_timeout_s does not fit the watchdog register")
        return self


class DeviceProfile(StrictModel):
    """Device knowledge as data (evcc-style template)."""

    id: Identifier
    vendor: str = Field(min_length=1)
    description: str = ""
    kind: Literal["pv_inverter", "battery", "meter", "router", "relay_board", "switch"]
    protocol: Literal["modbus_sunspec", "opcua_router", "modbus_relay", "echonet_lite"]
    models_expected: list[SunSpecModelId] = Field(
        default_factory=list, description="SunSpec model ids"
    )
    control_models: list[SunSpecModelId] = Field(
        default_factory=list, description="models used to write"
    )
    revert_timeout_s: DeviceTimerS = Field(default=60.0, description="device fail-safe timer [s]")
    signs: SignFlips = SignFlips()
    quirks: ProfileQuirks = ProfileQuirks()
    echonet: EchonetProfile | None = Field(
        default=None, description="ECHONET Lite knowledge (protocol echonet_lite only)")
    relay: RelayBoardProfile | None = Field(default=None, description="relay boards only")

    @model_validator(mode="after")
    def _protocol_fits_kind(self) -> DeviceProfile:
        if self.protocol == "echonet_lite" or self.echonet is not None:
            return self._echonet_fits_kind()
        if self.kind == "switch":
            raise ValueError("a switch profile uses protocol 'echonet_lite'")
        if (self.kind == "router") != (self.protocol == "opcua_router"):
            raise ValueError("routers use protocol 'opcua_router'; other kinds 'modbus_sunspec'")
        if (self.kind == "relay_board") != (self.protocol == "modbus_relay"):
            raise ValueError("relay boards use protocol 'modbus_relay', and only they")
        if (self.kind == "relay_board") != (self.relay is not None):
            raise ValueError("a relay_board profile needs a 'relay' block, and only it")
        missing = set(self.control_models) - set(self.models_expected)
        if missing:
            raise ValueError(f"control_models {sorted(missing)} are not in models_expected")
        return self

    def _echonet_fits_kind(self) -> DeviceProfile:
        if self.protocol != "echonet_lite":
            raise ValueError("an 'echonet' block needs protocol 'echonet_lite'")
        if self.echonet is None:
            raise ValueError("protocol 'echonet_lite' needs an 'echonet' block with class_code")
        if self.models_expected or self.control_models:
            raise ValueError("SunSpec models_expected/control_models do not apply to echonet_lite")
        if self.signs != SignFlips():
            raise ValueError("'signs' does not apply to echonet_lite: the drivers apply the "
                             "specification's signs; use echonet.quirks.invert_power_sign")
        problem = self.echonet.class_problem(self.kind)
        if problem:
            raise ValueError(problem)
        return self

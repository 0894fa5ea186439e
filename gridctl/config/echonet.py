"""ECHONET Lite configuration: the ``protocol.echonet`` transport block of a device and the
``echonet`` block of a device profile (object class and per-maker quirks, as data).

An ECHONET Lite device is one object on a node: the node's IP address and UDP port (3610)
from the site file, the object's class code from the profile (``0x027D`` a storage battery)
and its instance code from the site file. Quirks describe where a maker's product departs
from the specification; docs/echonet.md says how to add them for a new device.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator

from gridctl.config.base import StrictModel

#: Ceiling of a device's per-request timeout [s]. A read or a write may take 4 requests and a cycle
#: reads then writes, so a hung device holds a cycle at most 8 x 3 s = 24 s, inside the unit's
#: ``WatchdogSec=30``.
MAX_REQUEST_TIMEOUT_S = 3.0

#: The ECHONET Lite UDP port (unicast and the multicast group 224.0.23.0).
ECHONET_DEFAULT_PORT = 3610

#: Object classes (class group and class code, 16 bits) gridctl drives, by device kind.
ECHONET_CLASS_OF_KIND: dict[str, int] = {
    "pv_inverter": 0x0279,   # household solar power generation
    "battery": 0x027D,       # storage battery
    "meter": 0x0288,         # low-voltage smart electric energy meter (the B-route meter)
}
#: The JEM-A/HA terminal; a ``switch`` may also be any appliance switched through EPC 0x80.
ECHONET_SWITCH_CLASS = 0x05FD
#: Classes that are never a load switch: the node profile and the controller.
_NOT_SWITCHES = (0x0EF0, 0x05FF)


class EchonetProtocol(StrictModel):
    """ECHONET Lite over UDP: one object (class from the profile, ``instance``) on a node."""

    host: str = Field(min_length=1,
                      description="the node's IP address (ECHONET Lite has no host names)")
    port: int = Field(default=ECHONET_DEFAULT_PORT, ge=1, le=65535,
                      description="UDP port of the node (3610; emulators in tests may use others)")
    instance: int = Field(default=1, ge=1, le=127,
                          description="instance code of the object (third EOJ byte)")
    timeout_s: float = Field(default=2.0, gt=0, le=MAX_REQUEST_TIMEOUT_S,
                             description="per-request timeout [s]")

    @field_validator("host")
    @classmethod
    def _ip_address(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value.strip("[]")))
        except ValueError:
            raise ValueError(f"host '{value}' is not an IP address (ECHONET Lite nodes are "
                             "addressed by IP)") from None


class EchonetQuirks(StrictModel):
    """Where a maker's product departs from the ECHONET Lite specification (the keys of the
    drivers' ``drivers.echonet.quirks.EchonetQuirks``; docs/echonet.md explains each).

    Signs: the drivers apply the specification's sign (battery 0xD3 charging positive, meter
    0xE7 import positive) and turn it supply-positive; ``invert_power_sign`` is for a product
    that reports the opposite. The profile's ``signs`` block does not apply to ECHONET Lite.
    """

    invert_power_sign: bool = Field(
        default=False, description="signed power (battery 0xD3, meter 0xE7) reported opposite to the spec")
    fixed_counters: bool = Field(
        default=True, description="smart meter answers 0xEA/0xEB (fixed 30-minute counters)")
    set_service: Literal["SetC", "SetI"] = Field(
        default="SetC", description="SetC (acknowledged) or SetI for a device that answers SetC badly")
    replies_to_3610: bool = Field(
        default=False, description="the device replies only to port 3610, not to the sender's port")
    inter_request_delay_s: float = Field(default=0.0, ge=0, le=10,
                                         description="pause before each request [s]")
    max_epcs_per_get: int = Field(
        default=16, ge=1, le=64, description="most EPCs asked in one Get (some devices answer SNA above)")
    retries: int = Field(default=2, ge=0, le=5, description="extra attempts after a timeout")
    backoff_s: float = Field(default=0.05, ge=0, le=5, description="first retry delay [s], doubled per attempt")
    pv_limit: Literal["watts", "percent"] = Field(
        default="watts", description="PV curtailment through 0xA1 (watts) or 0xA0 (percent of 0xE8)")
    battery_release_mode: Literal["auto", "standby"] = Field(
        default="auto", description="mode (0xDA) the battery returns to when gridctl releases it")


class EchonetProfile(StrictModel):
    """ECHONET Lite knowledge of one product: its object class and its quirks."""

    class_code: int = Field(ge=0, le=0xFFFF,
                            description="class group and class code, e.g. 0x027D (storage battery)")
    quirks: EchonetQuirks = EchonetQuirks()

    @field_validator("class_code", mode="before")
    @classmethod
    def _hex_text(cls, value: object) -> object:
        if isinstance(value, str) and value.lower().startswith("0x"):
            try:
                return int(value, 16)
            except ValueError:
                raise ValueError(f"class_code '{value}' is not a hexadecimal number") from None
        return value

    def class_problem(self, kind: str) -> str | None:
        """Why ``class_code`` cannot be a device of ``kind`` (None when it fits)."""
        if kind == "switch":
            if self.class_code in _NOT_SWITCHES:
                return f"class_code 0x{self.class_code:04X} is not an appliance a switch can be"
            return None
        wanted = ECHONET_CLASS_OF_KIND.get(kind)
        if wanted is None:
            return f"a {kind} has no ECHONET Lite class"
        if self.class_code != wanted:
            return (f"class_code 0x{self.class_code:04X} does not match kind '{kind}' "
                    f"(expected 0x{wanted:04X})")
        return None

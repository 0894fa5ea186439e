"""Per-maker/model deviations of ECHONET Lite devices, as data the drivers accept.

The application maps a device profile's ``quirks:`` block onto :class:`EchonetQuirks`; the
keys are the field names below (docs/echonet.md lists them with examples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class EchonetQuirks:
    """How one device model departs from the specification or needs gentle handling.

    Attributes
    ----------
    invert_power_sign : bool
        The device reports its signed power (battery 0xD3, meter 0xE7) with the opposite sign
        to the specification (battery: charging positive; meter: import positive).
    fixed_counters : bool
        The meter answers 0xEA/0xEB (fixed 30-minute counters); False for meters that refuse
        them (the node then settles from live counters).
    set_service : str
        ``SetC`` (default: the device acknowledges every set with Set_Res) or ``SetI`` (a
        device that answers SetC badly; writes are then unconfirmed).
    replies_to_3610 : bool
        The device answers only to UDP port 3610, not to the requester's source port: the
        driver then needs a client bound to port 3610 (``EchonetClient(local_port=3610)``).
    inter_request_delay_s : float
        Pause before each request to the device [s] (slow devices drop back-to-back frames).
    max_epcs_per_get : int
        Most EPCs asked in one Get (some devices answer Get_SNA to long requests).
    retries : int
        Extra attempts after a timeout.
    backoff_s : float
        First retry delay [s], doubled per attempt.
    pv_limit : str
        ``watts`` (curtail through 0xA1 [W]) or ``percent`` (0xA0 [%] of rated 0xE8).
    battery_release_mode : str
        Mode a battery is put in when gridctl releases it: ``auto`` (0x46) or ``standby``
        (0x44), for models whose auto mode does not follow the home's own load.
    plausible_power_kw : float or None
        Magnitude above which a power reading is garbage and dropped [kW].
    """

    invert_power_sign: bool = False
    fixed_counters: bool = True
    set_service: Literal["SetC", "SetI"] = "SetC"
    replies_to_3610: bool = False
    inter_request_delay_s: float = 0.0
    max_epcs_per_get: int = 16
    retries: int = 2
    backoff_s: float = 0.05
    pv_limit: Literal["watts", "percent"] = "watts"
    battery_release_mode: Literal["auto", "standby"] = "auto"
    plausible_power_kw: float | None = None

    def __post_init__(self) -> None:
        if self.set_service not in ("SetC", "SetI"):
            raise ValueError(f"set_service must be SetC or SetI, got {self.set_service!r}")
        if self.pv_limit not in ("watts", "percent"):
            raise ValueError(f"pv_limit must be watts or percent, got {self.pv_limit!r}")
        if self.battery_release_mode not in ("auto", "standby"):
            raise ValueError("battery_release_mode must be auto or standby, "
                             f"got {self.battery_release_mode!r}")
        if self.max_epcs_per_get < 1 or self.retries < 0 or self.inter_request_delay_s < 0:
            raise ValueError("max_epcs_per_get must be >= 1, retries and "
                             "inter_request_delay_s >= 0")

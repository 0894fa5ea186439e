"""ECHONET Lite devices behind capability interfaces: PV, storage battery, smart meter, switch.

Native ECHONET quantities (W, Wh, kWh x coefficient x unit, JST date-times) are decoded through
the class knowledge, scaled to kW / kWh once, here, and turned supply-positive (the battery's
0xD3 is charging-positive on the wire; the meter's 0xE7 is import-positive, which is already
supply-positive); a maker's inverted sign is the ``invert_power_sign`` quirk. Implausible values
become notes and are never passed on.

Every driver takes ``(endpoint, client=None, quirks=None, name="")``. ``client`` may be one
:class:`~drivers.echonet.client.EchonetClient` shared by all ECHONET drivers of a daemon (the
owner opens and closes it; ``close()`` of a driver leaves a given client open); without one
the driver uses its event loop's shared client for its port, one socket for every such driver
(port 3610 for all devices with the ``replies_to_3610`` quirk, an ephemeral port for the rest:
:func:`~drivers.echonet.client.acquire_shared`), taken at connect and given back at close.

Fail-safe: ECHONET Lite has no revert timer for setpoints. ``revert_s`` is therefore not sent;
the safety is the daemon's re-write every cycle plus the release (``None``), which puts a
battery back in its own automatic mode (or standby, per quirk) and lifts a PV limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC
from zoneinfo import ZoneInfo

from drivers import errors
from drivers.capabilities import (
    DeviceIdentity,
    DeviceReading,
    EnergyCounters,
    FixedPointCounters,
    SwitchState,
)
from drivers.echonet.client import EchonetClient, GetResult, acquire_shared, release_shared
from drivers.echonet.frame import Eoj
from drivers.echonet.knowledge import KnowledgeError, Value, decode_value, encode_value
from drivers.echonet.quirks import EchonetQuirks
from drivers.errors import PermanentDeviceError
from drivers.guards import monotonic_counters, plausible_power_kw
from drivers.profile import ECHONET_PORT, EchonetEndpoint

log = logging.getLogger(__name__)

#: A meter's fixed-point date-times are Japan Standard Time (the meter's clock).
METER_TZ = ZoneInfo("Asia/Tokyo")
PV_CLASS = 0x0279
BATTERY_CLASS = 0x027D
METER_CLASS = 0x0288
SWITCH_CLASS = 0x05FD
#: Battery power below this magnitude is commanded as standby [kW].
_IDLE_KW = 0.001


class EchonetDevice:
    """Base: client ownership, property-map check, chunked Get, guarded counters.

    Parameters
    ----------
    endpoint : EchonetEndpoint
    client : EchonetClient or None
        A shared client (see module docstring); None opens one per driver.
    quirks : EchonetQuirks or None
    name : str
        Device name for messages (defaults to ``host:port#instance``).
    """

    CLASS_CODE = SWITCH_CLASS
    #: EPCs the device must list in its Get property map (0x9F).
    REQUIRED_EPCS: tuple[int, ...] = (0x80,)

    def __init__(self, endpoint: EchonetEndpoint, client: EchonetClient | None = None,
                 quirks: EchonetQuirks | None = None, name: str = "") -> None:
        self.endpoint = endpoint
        self.quirks = quirks or EchonetQuirks()
        self.name = name or endpoint.label
        self.eoj = Eoj.of(self.CLASS_CODE, endpoint.instance)
        #: No client given: the driver uses the event loop's shared one for its port
        #: (:func:`~drivers.echonet.client.acquire_shared`) between connect and close.
        self._shared = client is None
        self.client: EchonetClient | None = client
        self.get_map: frozenset[int] = frozenset()
        self.set_map: frozenset[int] = frozenset()
        self._last_counters: tuple[float | None, float | None] = (None, None)

    # ---- lifecycle ---------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the client, read the property maps and check the required EPCs are there."""
        if self._shared and self.client is None:
            self.client = await acquire_shared(ECHONET_PORT if self.quirks.replies_to_3610 else 0)
        await self.client.open()
        if self.quirks.replies_to_3610 and self.client.local_port != ECHONET_PORT:
            raise PermanentDeviceError(
                self.name, errors.BAD_CONFIGURATION,
                f"the device answers only to port {ECHONET_PORT} (quirk replies_to_3610) but "
                f"the client is bound to port {self.client.local_port}")
        maps = await self._get((0x9F, 0x9E), required=(0x9F,))
        self.get_map = self._decode_map(maps.get(0x9F))
        self.set_map = self._decode_map(maps.get(0x9E))
        missing = [e for e in self.REQUIRED_EPCS if e not in self.get_map]
        if missing:
            names = ", ".join(f"0x{e:02X}" for e in missing)
            raise PermanentDeviceError(self.name, errors.NOT_IMPLEMENTED,
                                       f"object {self.eoj} does not implement EPC {names}")
        await self._after_connect()

    async def _after_connect(self) -> None:
        """Read what a class needs once (ratings, scaling)."""

    async def close(self) -> None:
        if self._shared and self.client is not None:
            client, self.client = self.client, None
            await release_shared(client)

    def _decode_map(self, edt: bytes | None) -> frozenset[int]:
        value = self._decode(0x9F, edt, []) if edt else None
        return value if isinstance(value, frozenset) else frozenset()

    # ---- I/O ---------------------------------------------------------------------------------

    async def _get(self, epcs: Iterable[int], required: Iterable[int] = ()) -> GetResult:
        wanted = tuple(epcs)
        step = self.quirks.max_epcs_per_get
        values: dict[int, bytes] = {}
        refused: list[int] = []
        for start in range(0, len(wanted), step):
            if self.quirks.inter_request_delay_s:
                await asyncio.sleep(self.quirks.inter_request_delay_s)
            part = await self.client.get(
                self.endpoint.host, self.endpoint.port, self.eoj, wanted[start:start + step],
                required=required, timeout_s=self.endpoint.timeout_s, retries=self.quirks.retries,
                backoff_s=self.quirks.backoff_s)
            values.update(part)
            refused += part.refused
        return GetResult(values, refused)

    async def _set(self, values: Mapping[int, Value]) -> None:
        if self.quirks.inter_request_delay_s:
            await asyncio.sleep(self.quirks.inter_request_delay_s)
        edts = {epc: encode_value(self.CLASS_CODE, epc, v) for epc, v in values.items()}
        await self.client.set(self.endpoint.host, self.endpoint.port, self.eoj, edts,
                              ack=self.quirks.set_service == "SetC",
                              timeout_s=self.endpoint.timeout_s, retries=self.quirks.retries,
                              backoff_s=self.quirks.backoff_s)

    def _decode(self, epc: int, edt: bytes | None, notes: list[str]) -> Value:
        if edt is None:
            return None
        try:
            return decode_value(self.CLASS_CODE, epc, edt)
        except KnowledgeError as exc:
            notes.append(f"{exc}, dropped")
            return None

    async def read_identity(self) -> DeviceIdentity:
        """Maker code (0x8A, as hex), product code (0x8C), serial (0x8D), release (0x82)."""
        got = await self._get((0x8A, 0x8C, 0x8D, 0x82))
        notes: list[str] = []
        maker = self._decode(0x8A, got.get(0x8A), notes)
        version = got.get(0x82)
        return DeviceIdentity(
            manufacturer=None if maker is None else f"0x{maker:06X}",
            model=self._decode(0x8C, got.get(0x8C), notes) or None,
            serial=self._decode(0x8D, got.get(0x8D), notes) or None,
            version=chr(version[2]) if version and len(version) == 4 and version[2] else None,
        )

    # ---- guards ------------------------------------------------------------------------------

    def _guard_counters(self, supplied_kwh: float | None, absorbed_kwh: float | None,
                        notes: list[str]) -> EnergyCounters:
        """Drop a counter that went backwards (garbage or a device reset), with a note."""
        counters, self._last_counters = monotonic_counters(supplied_kwh, absorbed_kwh, self._last_counters, notes)
        return counters

    def _plausible(self, power_kw: float | None, notes: list[str]) -> float | None:
        return plausible_power_kw(power_kw, self.quirks.plausible_power_kw, notes)

    def _sign(self) -> int:
        return -1 if self.quirks.invert_power_sign else 1


def _number(value: Value) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


class EchonetPvInverter(EchonetDevice):
    """Household solar power generation (0x0279): output [kW], generated energy, curtailment."""

    CLASS_CODE = PV_CLASS
    REQUIRED_EPCS = (0x80, 0xE0)

    def __init__(self, *args, **kwargs) -> None:  # noqa: D107 (same parameters as the base)
        super().__init__(*args, **kwargs)
        self.rated_w: float | None = None

    async def _after_connect(self) -> None:
        if 0xE8 in self.get_map:
            self.rated_w = _number(self._decode(0xE8, (await self._get((0xE8,))).get(0xE8), []))

    async def read_snapshot(self) -> DeviceReading:
        """PV power [kW] (never negative) from 0xE0; produced energy [kWh] from 0xE1."""
        notes: list[str] = []
        got = await self._get(e for e in (0xE0, 0xE1) if e in self.get_map)
        power_w = _number(self._decode(0xE0, got.get(0xE0), notes))
        power = self._plausible(None if power_w is None else power_w / 1000.0, notes)
        produced = _number(self._decode(0xE1, got.get(0xE1), notes))
        return DeviceReading(ac_power_kw=power,
                             counters=self._guard_counters(produced, None, notes),
                             notes=tuple(notes))

    async def write_pv_limit_kw(self, limit_kw: float | None, revert_s: float) -> None:
        """Limit output to ``limit_kw`` [kW] (None lifts it) via 0xA1 [W] or 0xA0 [%].

        ``revert_s`` is not sent (ECHONET has no revert timer; see the module docstring).
        """
        if self.quirks.pv_limit == "percent":
            if limit_kw is not None and not self.rated_w:
                raise PermanentDeviceError(self.name, errors.NOT_IMPLEMENTED,
                                           "no rated power (0xE8) to express a limit in %")
            pct = 100 if limit_kw is None else 100.0 * limit_kw * 1000.0 / self.rated_w
            await self._set({0xA0: int(max(0.0, min(100.0, round(pct))))})
            return
        if limit_kw is None:
            watts = self.rated_w if self.rated_w else 0xFFFD
        else:
            watts = max(0.0, limit_kw * 1000.0)
        await self._set({0xA1: int(min(round(watts), 0xFFFD))})


class EchonetBattery(EchonetDevice):
    """Storage battery (0x027D): power [kW] (discharge positive), SoC [%], mode + power set.

    Control: a discharge of P kW sets 0xEC = P W and 0xDA = discharging (0x43); a charge sets
    0xEB and 0xDA = charging (0x42); ~0 is standby (0x44); None releases to auto (0x46) or
    standby per the ``battery_release_mode`` quirk. The device has no fail-safe timer of its
    own (see the module docstring); :meth:`supports_fail_safe` says so.
    """

    CLASS_CODE = BATTERY_CLASS
    REQUIRED_EPCS = (0x80, 0xDA)

    async def read_snapshot(self) -> DeviceReading:
        """Power from 0xD3 [kW], SoC from 0xE4 [%], counters from 0xA9/0xA8 [kWh] if present."""
        notes: list[str] = []
        got = await self._get(e for e in (0xD3, 0xE4, 0xA8, 0xA9) if e in self.get_map)
        charge_w = _number(self._decode(0xD3, got.get(0xD3), notes))
        # 0xD3 is charging-positive on the wire; supply-positive is discharging-positive.
        power = None if charge_w is None else -self._sign() * charge_w / 1000.0 + 0.0
        counters = self._guard_counters(_number(self._decode(0xA9, got.get(0xA9), notes)),
                                        _number(self._decode(0xA8, got.get(0xA8), notes)), notes)
        return DeviceReading(ac_power_kw=self._plausible(power, notes), counters=counters,
                             soc_pct=self._soc(got, notes), notes=tuple(notes))

    def _soc(self, got: Mapping[int, bytes], notes: list[str]) -> float | None:
        soc = _number(self._decode(0xE4, got.get(0xE4), notes))
        if soc is not None and not 0.0 <= soc <= 100.0:
            notes.append(f"SoC {soc:g} % outside 0-100, dropped")
            return None
        return soc

    async def read_soc_pct(self) -> float | None:
        return self._soc(await self._get((0xE4,)), [])

    def supports_fail_safe(self) -> bool:
        """False: an ECHONET battery keeps its last mode; the daemon must keep re-writing."""
        return False

    async def write_battery_power_kw(self, power_kw: float | None, revert_s: float) -> None:
        """Command battery power [kW], positive discharging; None releases (auto/standby)."""
        if power_kw is None:
            await self._set({0xDA: self.quirks.battery_release_mode})
        elif abs(power_kw) < _IDLE_KW:
            await self._set({0xDA: "standby"})
        elif power_kw > 0:
            await self._set({0xEC: round(power_kw * 1000.0), 0xDA: "discharging"})
        else:
            await self._set({0xEB: round(-power_kw * 1000.0), 0xDA: "charging"})

    async def read_mode(self) -> str | None:
        """The operation mode (0xDA) as the knowledge names it (auto, charging, ...)."""
        value = self._decode(0xDA, (await self._get((0xDA,))).get(0xDA), [])
        return value if isinstance(value, str) else None


class EchonetSmartMeter(EchonetDevice):
    """Low-voltage smart electric energy meter (0x0288, the B-route meter).

    Power from 0xE7 [kW] (import positive); counters 0xE0 (supplied = forward = import) and
    0xE3 (absorbed = reverse = export) scaled by the coefficient 0xD3 and unit 0xE1, read once
    at connect; the fixed 30-minute counters 0xEA/0xEB with the meter's JST time in UTC.
    """

    CLASS_CODE = METER_CLASS
    REQUIRED_EPCS = (0x80, 0xE7, 0xE0, 0xE1)

    def __init__(self, *args, **kwargs) -> None:  # noqa: D107 (same parameters as the base)
        super().__init__(*args, **kwargs)
        self.kwh_per_count: float = 1.0
        self._last_fixed: FixedPointCounters | None = None

    async def _after_connect(self) -> None:
        got = await self._get((0xD3, 0xE1), required=(0xE1,))
        notes: list[str] = []
        coefficient = _number(self._decode(0xD3, got.get(0xD3), notes)) or 1.0
        unit = _number(self._decode(0xE1, got.get(0xE1), notes))
        if unit is None:
            raise PermanentDeviceError(self.name, errors.TYPE_MISMATCH,
                                       f"unit 0xE1 not understood: {'; '.join(notes)}")
        self.kwh_per_count = coefficient * unit

    def _fixed_epcs(self) -> tuple[int, ...]:
        if not self.quirks.fixed_counters:
            return ()
        return tuple(e for e in (0xEA, 0xEB) if e in self.get_map)

    async def read_snapshot(self) -> DeviceReading:
        """Power [kW], live counters [kWh] and the last fixed 30-minute counters."""
        notes: list[str] = []
        got = await self._get((0xE7, 0xE0, 0xE3, *self._fixed_epcs()))
        power_w = _number(self._decode(0xE7, got.get(0xE7), notes))
        power = None if power_w is None else self._sign() * power_w / 1000.0 + 0.0
        counters = self._guard_counters(self._kwh(0xE0, got, notes),
                                        self._kwh(0xE3, got, notes), notes)
        return DeviceReading(ac_power_kw=self._plausible(power, notes), counters=counters,
                             fixed_counters=self._fixed(got, notes), notes=tuple(notes))

    def _kwh(self, epc: int, got: Mapping[int, bytes], notes: list[str]) -> float | None:
        count = _number(self._decode(epc, got.get(epc), notes))
        return None if count is None else count * self.kwh_per_count

    async def read_fixed_counters(self) -> FixedPointCounters | None:
        """The cumulative counters at the meter's last fixed 30-minute point (None: none)."""
        epcs = self._fixed_epcs()
        if not epcs:
            return None
        notes: list[str] = []
        fixed = self._fixed(await self._get(epcs), notes)
        for note in notes:
            log.warning("echonet meter=%s %s", self.name, note)
        return fixed

    def _fixed(self, got: Mapping[int, bytes], notes: list[str]) -> FixedPointCounters | None:
        parts = [self._decode(e, got.get(e), notes) for e in (0xEA, 0xEB)]
        points = [p for p in parts if isinstance(p, tuple)]
        if not points:
            return None
        times = {p[0] for p in points}
        if len(times) != 1:
            notes.append(f"fixed counters at different times {sorted(times)}, dropped")
            return None
        at_local = times.pop()
        if at_local.minute % 30 or at_local.second:
            notes.append(f"fixed point {at_local} is not on a 30-minute boundary, dropped")
            return None
        at_utc = at_local.replace(tzinfo=METER_TZ).astimezone(UTC)
        values = [None if not isinstance(p, tuple) or p[1] is None else p[1] * self.kwh_per_count
                  for p in parts]
        fixed = FixedPointCounters(at_utc=at_utc, supplied_kwh=values[0], absorbed_kwh=values[1])
        return self._guard_fixed(fixed, notes)

    def _guard_fixed(self, fixed: FixedPointCounters, notes: list[str]) -> FixedPointCounters | None:
        last = self._last_fixed
        if last is not None and (fixed.at_utc < last.at_utc or any(
                now is not None and before is not None and now < before
                for now, before in ((fixed.supplied_kwh, last.supplied_kwh),
                                    (fixed.absorbed_kwh, last.absorbed_kwh)))):
            notes.append(f"fixed counters went backwards ({last} -> {fixed}), dropped")
            return None
        self._last_fixed = fixed
        return fixed


class EchonetSwitch(EchonetDevice):
    """A load switch object (0x05FD, or any appliance) switched through 0x80; channel 0 only.

    ``commanded_on`` is what the last acknowledged set wrote (None before any); ``feedback_on``
    is 0x80 as read back. After a device reboot the two differ until re-driven.
    """

    CLASS_CODE = SWITCH_CLASS
    REQUIRED_EPCS = (0x80,)

    def __init__(self, *args, **kwargs) -> None:  # noqa: D107 (same parameters as the base)
        super().__init__(*args, **kwargs)
        self.commanded_on: bool | None = None

    async def connect(self) -> None:
        await super().connect()
        if 0x80 not in self.set_map:
            raise PermanentDeviceError(self.name, errors.NOT_IMPLEMENTED,
                                       f"object {self.eoj} does not accept sets of 0x80")

    def _check_channel(self, channel: int) -> None:
        if channel != 0:
            raise PermanentDeviceError(self.name, errors.BAD_ADDRESS,
                                       f"an ECHONET Lite switch has channel 0 only, not {channel}")

    async def set_switch(self, channel: int, on: bool) -> None:
        """Connect (True) or disconnect (False) the circuit: 0x80 = 0x30 / 0x31."""
        self._check_channel(channel)
        await self._set({0x80: "on" if on else "off"})
        self.commanded_on = on

    async def read_switches(self) -> tuple[SwitchState, ...]:
        notes: list[str] = []
        status = self._decode(0x80, (await self._get((0x80,), required=(0x80,))).get(0x80), notes)
        feedback = None if status is None else status == "on"
        return (SwitchState(channel=0, commanded_on=self.commanded_on, feedback_on=feedback),)

    async def read_snapshot(self) -> DeviceReading:
        return DeviceReading(switches=await self.read_switches())

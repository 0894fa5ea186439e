"""SunSpec devices behind capability interfaces: PV inverter, battery, meter.

Each class exposes only what the device can do. Native SunSpec quantities (W, Wh, %) are
scaled to kW / kWh once, here, and turned supply-positive with the profile's ``power_sign``.
A cumulative counter that goes backwards is dropped with a note, never passed on.
"""

from __future__ import annotations

import logging

from drivers import errors
from drivers.capabilities import DeviceIdentity, DeviceReading, EnergyCounters, GridState
from drivers.errors import PermanentDeviceError
from drivers.guards import monotonic_counters, plausible_power_kw
from drivers.profile import DeviceQuirks, ModbusEndpoint
from drivers.sunspec.client import SunSpecClient
from drivers.sunspec.models import Value

log = logging.getLogger(__name__)

INVERTER_MODELS = (103, 102, 101)
METER_MODELS = (203, 204, 202, 201)
#: 704 WSetMod symbol: absolute watts.
_WSET_MOD_WATTS = 1
#: 124 StorCtl_Mod bits.
_STORCTL_CHARGE = 0b01
_STORCTL_DISCHARGE = 0b10
#: Points a poll reads per model (a handful, not whole models).
POLL_POINTS: dict[int, tuple[str, ...]] = {
    **{m: ("W", "WH", "PhVphA", "Hz") for m in INVERTER_MODELS},
    **{m: ("W", "TotWhImp", "TotWhExp", "PhV", "Hz") for m in METER_MODELS},
    701: ("W", "TotWhInj", "TotWhAbs", "ConnSt", "LNV", "Hz"),
    802: ("W", "SoC"),
    713: ("SoC",),
    124: ("ChaState",),
}
#: Revert timers are 16-bit registers in models 123/124.
_MAX_RVRT_16_S = 0xFFFE


def _kw(value_w: Value, sign: int = 1) -> float | None:
    # "+ 0.0" turns a sign-flipped zero (-0.0) into 0.0 for tables and JSON.
    return None if value_w is None else sign * float(value_w) / 1000.0 + 0.0


def _kwh(value_wh: Value) -> float | None:
    return None if value_wh is None else float(value_wh) / 1000.0


class SunSpecDevice:
    """Base: connection, identity, model selection, counter guard.

    Parameters
    ----------
    endpoint : ModbusEndpoint
    quirks : DeviceQuirks
    name : str or None
        Device name for messages (defaults to ``host:port/unit``).
    """

    def __init__(self, endpoint: ModbusEndpoint, quirks: DeviceQuirks | None = None, name: str | None = None):
        self.client = SunSpecClient(endpoint, quirks)
        self.quirks = self.client.quirks
        self.name = name or endpoint.label
        self._last_counters: tuple[float | None, float | None] = (None, None)
        self._rated_kw: float | None = None  # model 120 rating, read once
        self._beat: int | None = None  # last heartbeat written to model 802

    async def connect(self) -> None:
        """Connect, discover the SunSpec map, and check the required models are present."""
        await self.client.connect()
        self._check_models()

    def _check_models(self) -> None:
        """Raise PermanentDeviceError(MODEL_MISSING) when a required model is absent."""

    async def close(self) -> None:
        await self.client.close()

    def _first_model(self, candidates: tuple[int, ...]) -> int | None:
        order = tuple(m for m in self.quirks.models if m in candidates) + candidates
        return next((m for m in order if self.client.has_model(m)), None)

    def _require(self, candidates: tuple[int, ...], what: str) -> int:
        model = self._first_model(candidates)
        if model is None:
            wanted = "/".join(str(m) for m in candidates)
            raise PermanentDeviceError(self.name, errors.MODEL_MISSING, f"no {what} model ({wanted}) found")
        return model

    async def read_identity(self) -> DeviceIdentity:
        """Manufacturer, model, serial and version from common model 1."""
        values, _ = await self.client.read_model(1)
        return DeviceIdentity(
            manufacturer=values.get("Mn"), model=values.get("Md"), serial=values.get("SN"), version=values.get("Vr")
        )

    def _guard_counters(self, supplied_kwh: float | None, absorbed_kwh: float | None, notes: list[str]) -> EnergyCounters:
        """Drop a counter that went backwards (garbage or a device reset), with a note."""
        if self.quirks.swap_counters:
            supplied_kwh, absorbed_kwh = absorbed_kwh, supplied_kwh
        counters, self._last_counters = monotonic_counters(supplied_kwh, absorbed_kwh, self._last_counters, notes)
        return counters

    def _plausible(self, power_kw: float | None, notes: list[str]) -> float | None:
        """Drop a power reading beyond the profile's plausibility bound (garbage), with a note."""
        return plausible_power_kw(power_kw, self.quirks.plausible_power_kw, notes)

    async def _grid_from(self, values: dict[str, Value], voltage_key: str, connected: bool | None) -> GridState:
        voltage = values.get(voltage_key)
        frequency = values.get("Hz")
        return GridState(
            connected=connected,
            voltage_v=None if voltage is None else float(voltage),
            frequency_hz=None if frequency is None else float(frequency),
        )


class SunSpecMeter(SunSpecDevice):
    """A SunSpec meter (models 201-204): grid (or node) power, import/export counters."""

    def _check_models(self) -> None:
        self._require(METER_MODELS, "meter")

    async def read_snapshot(self) -> DeviceReading:
        """Power [kW] (import positive), counters [kWh] (supplied = import), voltage, frequency."""
        model = self._require(METER_MODELS, "meter")
        values, notes = await self.client.read_model(model, POLL_POINTS[model])
        counters = self._guard_counters(_kwh(values.get("TotWhImp")), _kwh(values.get("TotWhExp")), notes)
        grid = await self._grid_from(values, "PhV", None)
        power = self._plausible(_kw(values.get("W"), self.quirks.power_sign), notes)
        return DeviceReading(ac_power_kw=power, counters=counters, grid=grid, notes=tuple(notes))


class SunSpecPvInverter(SunSpecDevice):
    """A SunSpec PV inverter (101-103 or 701): output power, energy, grid, PV limit."""

    def _check_models(self) -> None:
        self._require((*INVERTER_MODELS, 701), "inverter")

    async def read_snapshot(self) -> DeviceReading:
        """PV power [kW] (never negative), produced energy [kWh], grid voltage and frequency."""
        model = self._require((*INVERTER_MODELS, 701), "inverter")
        values, notes = await self.client.read_model(model, POLL_POINTS[model])
        power = self._plausible(_kw(values.get("W"), self.quirks.power_sign), notes)
        if power is not None and power < -0.05:
            notes.append(f"PV power {power:.3f} kW is negative (sign misconfigured?), dropped")
            power = None
        if model == 701:
            produced, absorbed = _kwh(values.get("TotWhInj")), _kwh(values.get("TotWhAbs"))
            connected = None if values.get("ConnSt") is None else values["ConnSt"] == 1
            grid = await self._grid_from(values, "LNV", connected)
        else:
            produced, absorbed = _kwh(values.get("WH")), None
            grid = await self._grid_from(values, "PhVphA", None)
        counters = self._guard_counters(produced, absorbed, notes)
        return DeviceReading(
            ac_power_kw=None if power is None else max(power, 0.0), counters=counters, grid=grid, notes=tuple(notes)
        )

    async def rated_power_kw(self) -> float | None:
        """Nameplate continuous power from model 120 [kW] (read once, then cached)."""
        if not self.client.has_model(120):
            return None
        if self._rated_kw is None:
            values, _ = await self.client.read_model(120, ("WRtg",))
            self._rated_kw = _kw(values.get("WRtg"))
        return self._rated_kw

    def _use_704(self) -> bool:
        if self.quirks.control == "704_802":
            return True
        if self.quirks.control == "123_124":
            return False
        return self.client.has_model(704)

    async def write_pv_limit_kw(self, limit_kw: float | None, revert_s: float) -> None:
        """Limit output to ``limit_kw`` [kW] (None: no limit); the inverter reverts after ``revert_s`` [s]."""
        rated = await self.rated_power_kw()
        if limit_kw is not None and not rated:
            raise PermanentDeviceError(self.name, errors.MODEL_MISSING, "no rating (model 120) to express a limit in %")
        pct = 100.0 if limit_kw is None else max(0.0, min(100.0, 100.0 * limit_kw / rated))
        enable = 0 if limit_kw is None else 1
        if self._use_704():
            await self.client.write_points(
                704,
                {"WMaxLimPctEna": enable, "WMaxLimPct": pct, "WMaxLimPctRvrtTms": int(revert_s), "WMaxLimPctEnaRvrt": 0},
            )
        else:
            self._require((123,), "immediate controls")
            rvrt = min(int(revert_s), _MAX_RVRT_16_S)
            await self.client.write_points(123, {"WMaxLimPct": pct, "WMaxLimPct_RvrtTms": rvrt, "WMaxLim_Ena": enable})


class SunSpecBattery(SunSpecDevice):
    """A SunSpec battery inverter: SoC (802/713/124), power and counters (701 or 103), control."""

    def _check_models(self) -> None:
        self._require((802, 713, 124), "storage")
        if self._first_model((701, *INVERTER_MODELS, 802)) is None:
            raise PermanentDeviceError(self.name, errors.MODEL_MISSING, "no power measurement (701/101-103/802)")
        if not (self.client.has_model(704) or self.client.has_model(124)):
            raise PermanentDeviceError(self.name, errors.MODEL_MISSING, "no storage control model (704 or 124)")

    async def read_snapshot(self) -> DeviceReading:
        """Battery power [kW] (discharge positive), charge/discharge counters [kWh], SoC [%].

        Power and counters come from 701 (or 101-103) when present, else power from 802 and
        no counters.
        """
        notes: list[str] = []
        ac_model = self._first_model((701, *INVERTER_MODELS, 802))
        assert ac_model is not None
        ac, ac_notes = await self.client.read_model(ac_model, POLL_POINTS[ac_model])
        notes += ac_notes
        soc = await self._read_soc(notes, ac if ac_model == 802 else None)
        if ac_model == 701:
            counters = self._guard_counters(_kwh(ac.get("TotWhInj")), _kwh(ac.get("TotWhAbs")), notes)
            connected = None if ac.get("ConnSt") is None else ac["ConnSt"] == 1
            grid = await self._grid_from(ac, "LNV", connected)
        elif ac_model == 802:
            counters, grid = EnergyCounters(None, None), None
        else:
            counters = self._guard_counters(_kwh(ac.get("WH")), None, notes)
            grid = await self._grid_from(ac, "PhVphA", None)
        return DeviceReading(
            ac_power_kw=self._plausible(_kw(ac.get("W"), self.quirks.power_sign), notes), counters=counters,
            soc_pct=soc, grid=grid, notes=tuple(notes),
        )

    async def _read_soc(self, notes: list[str], model_802: dict[str, Value] | None = None) -> float | None:
        model = self._require((802, 713, 124), "storage")
        if model == 802 and model_802 is not None:
            values = model_802  # already read in this poll: one request less
        else:
            values, soc_notes = await self.client.read_model(model, POLL_POINTS[model])
            notes += soc_notes
        soc = values.get("ChaState" if model == 124 else "SoC")
        if soc is not None and not 0.0 <= float(soc) <= 100.0:
            notes.append(f"SoC {soc} % outside 0-100, dropped")
            return None
        return None if soc is None else float(soc)

    async def read_soc_pct(self) -> float | None:
        return await self._read_soc([])

    def control_method(self) -> str:
        """``704_802`` or ``123_124``: how setpoints are written to this device."""
        if self.quirks.control != "auto":
            return self.quirks.control
        return "704_802" if self.client.has_model(704) else "123_124"

    def supports_fail_safe(self) -> bool:
        """True when the device offers a revert timer or heartbeat for its setpoints."""
        return self.client.has_model(704) or self.client.has_model(124) or self.client.has_model(802)

    async def write_battery_power_kw(self, power_kw: float | None, revert_s: float) -> None:
        """Command battery power [kW], positive discharging; None hands control back.

        The device reverts to its own operation after ``revert_s`` [s] without a new write.
        """
        native_kw = None if power_kw is None else power_kw * self.quirks.power_sign
        if self.control_method() == "704_802":
            points: dict[str, float | int] = {"WSetEna": 0 if native_kw is None else 1}
            if native_kw is not None:
                points.update(
                    {"WSetMod": _WSET_MOD_WATTS, "WSet": native_kw * 1000.0, "WSetRvrtTms": int(revert_s),
                     "WSetEnaRvrt": 0}
                )
            await self.client.write_points(704, points)
            return
        await self._write_124(native_kw, revert_s)

    async def _write_124(self, native_kw: float | None, revert_s: float) -> None:
        if native_kw is None:
            await self.client.write_points(124, {"StorCtl_Mod": 0})
            return
        values, _ = await self.client.read_model(124)
        max_w = values.get("WChaMax")
        if not max_w:
            raise PermanentDeviceError(self.name, errors.MODEL_MISSING, "model 124 WChaMax not implemented")
        pct = min(100.0, abs(native_kw) * 1000.0 / float(max_w) * 100.0)
        charging = native_kw < 0
        await self.client.write_points(
            124,
            {
                "StorCtl_Mod": _STORCTL_CHARGE if charging else _STORCTL_DISCHARGE,
                "OutWRte": 0.0 if charging else pct,
                "InWRte": pct if charging else 0.0,
                "InOutWRte_RvrtTms": min(int(revert_s), _MAX_RVRT_16_S),
            },
        )

    async def write_heartbeat(self) -> None:
        """Increment model 802's controller heartbeat ``CtrlHb``."""
        if not self.client.has_model(802):
            raise PermanentDeviceError(self.name, errors.MODEL_MISSING, "no model 802 for a heartbeat")
        if self._beat is None:
            values, _ = await self.client.read_model(802, ("CtrlHb",))
            self._beat = int(values.get("CtrlHb") or 0)
        self._beat = (self._beat + 1) % 0xFFFF
        await self.client.write_points(802, {"CtrlHb": self._beat})

"""Emulated SunSpec devices (PV inverter, battery, meter) on pymodbus's Modbus TCP server.

The register map is built from pysunspec2's model definitions; live points are re-encoded from
``sim.plant.devices`` models on every read, and control writes (123, 124, 704, 802) drive the
plant, with revert timers honoured. Fault knobs (``SunSpecFaults``) can be changed at any time
by tests: delay, exception responses, garbage and not-implemented values, dropped connections,
single-client mode, flipped sign, wrong serial.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer, ModbusTlsServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.sunspec.models import Value, model_def
from sim.emulators.sunspec_map import (
    Identity,
    RegisterMap,
    build_map,
    decode_raw_points,
    encode_points,
    static_points,
    writable_span,
)
from sim.plant.devices import (
    BatterySpec,
    BatteryState,
    CounterPair,
    PvSpec,
    PvState,
    step_battery,
    step_counters,
    step_pv,
)

log = logging.getLogger(__name__)

_GRID_V = 202.0
_GRID_HZ = 50.0


@dataclass
class SunSpecFaults:
    """Fault knobs; tests flip them while the server runs.

    Attributes
    ----------
    delay_s : float
        Delay before every response [s] (slow device, timeouts).
    exception_code : int or None
        Answer every request with this Modbus exception code.
    garbage : bool
        Serve out-of-range scale factors and SoC (values a driver must drop).
    not_implemented : bool
        Serve power and SoC as "not implemented" sentinels.
    drop_next : int
        Close all connections on the next this-many requests (disconnect mid-poll).
    single_client : bool
        Accept one client at a time; later connections are closed at once.
    flip_sign : bool
        Report power with the opposite sign (miswired CT, wrong profile).
    serial : str or None
        Report this serial instead of the configured one.
    counter_step_kwh : float
        Added to the reported energy counters on every read, cumulatively; negative makes them
        run backwards (a reset or garbage counter).
    """

    delay_s: float = 0.0
    exception_code: int | None = None
    garbage: bool = False
    not_implemented: bool = False
    drop_next: int = 0
    single_client: bool = False
    flip_sign: bool = False
    serial: str | None = None
    counter_step_kwh: float = 0.0


@dataclass
class _Setpoint:
    value: float | None = None  # native units: battery kW (native sign) or PV limit kW
    expires_s: float | None = None  # wall-clock time [s]: revert timers count real seconds

    def active(self, wall_s: float) -> float | None:
        if self.value is None or (self.expires_s is not None and wall_s >= self.expires_s):
            return None
        return self.value


@dataclass
class DevicePhysics:
    """Plant state behind one emulated device (kind-specific parts are None when unused)."""

    kind: str
    battery_spec: BatterySpec | None = None
    battery: BatteryState | None = None
    pv_spec: PvSpec | None = None
    pv: PvState | None = None
    meter: CounterPair | None = None
    available_pv_kw: Callable[[float], float] = lambda _t: 0.0
    meter_power_kw: Callable[[float], float] = lambda _t: 0.0
    native_sign: int = 1
    meter_rated_kw: float = 30.0
    setpoint: _Setpoint = field(default_factory=_Setpoint)
    heartbeat: int = 0


class _Handler(ServerRequestHandler):
    """Request handler that enforces single-client mode."""

    def connection_made(self, transport) -> None:  # noqa: ANN001 - asyncio signature
        super().connection_made(transport)
        emulator = getattr(self.server, "emulator", None)
        if emulator is not None and emulator.faults.single_client and len(self.server.active_connections) > 1:
            transport.close()


class _Server(ModbusTcpServer):
    emulator: SunSpecEmulator | None = None

    def callback_new_connection(self):  # noqa: ANN201 - pymodbus signature
        return _Handler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


class _TlsServer(ModbusTlsServer):
    """Modbus/TCP Security (TLS) variant."""

    emulator: SunSpecEmulator | None = None

    def callback_new_connection(self):  # noqa: ANN201 - pymodbus signature
        return _Handler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


class SunSpecEmulator:
    """One emulated SunSpec device on a TCP port.

    Parameters
    ----------
    physics : DevicePhysics
    models : sequence of int
        Model ids in chain order (model 1 first).
    identity : Identity
    host, port : str, int
        Listening address; port 0 is not supported by pymodbus (pick a free port).
    unit_id : int
    base_address : int
    time_scale : float
        Simulated seconds per wall-clock second (tests speed physics up).
    clock : callable
        Wall clock [s], monotonic.
    faults : SunSpecFaults or None
    sslctx : ssl.SSLContext or None
        Serve Modbus/TCP Security (TLS) with this server context instead of plain TCP.
    """

    def __init__(
        self,
        physics: DevicePhysics,
        models: Sequence[int],
        identity: Identity,
        *,
        host: str = "127.0.0.1",
        port: int,
        unit_id: int = 1,
        base_address: int = 40000,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        faults: SunSpecFaults | None = None,
        sslctx: ssl.SSLContext | None = None,
    ) -> None:
        self.physics = physics
        self.sslctx = sslctx
        self.identity = identity
        self.host, self.port, self.unit_id = host, port, unit_id
        self.faults = faults or SunSpecFaults()
        self.time_scale = time_scale
        self._clock = clock
        self._t0 = clock()
        self._last_s = 0.0
        self.requests = 0
        self._counter_offset_kwh = 0.0
        self.map: RegisterMap = build_map(base_address, [(m, self._initial(m)) for m in models])
        self._w_sf = self._find_static("W_SF")
        self._server: _Server | _TlsServer | None = None
        self._registers: list[int] | None = None
        self._start_address = base_address

    # -- lifecycle ------------------------------------------------------------------------
    def _initial(self, model_id: int) -> dict[str, Value]:
        ratings: dict[str, float] = {}
        p = self.physics
        if p.pv_spec is not None:
            ratings["rated_w"] = p.pv_spec.rated_kw * 1000.0
        if p.battery_spec is not None:
            spec = p.battery_spec
            ratings.update(rated_w=max(spec.max_charge_kw, spec.max_discharge_kw) * 1000.0,
                           capacity_wh=spec.capacity_kwh * 1000.0, max_charge_w=spec.max_charge_kw * 1000.0,
                           max_discharge_w=spec.max_discharge_kw * 1000.0)
        if p.kind == "meter":
            ratings["rated_w"] = p.meter_rated_kw * 1000.0
        return static_points(model_id, self.identity, ratings)

    def _devices(self) -> list[SimDevice]:
        device = SimDevice(
            id=self.unit_id,
            simdata=[SimData(address=self.map.base_address, values=list(self.map.registers),
                             datatype=DataType.REGISTERS)],
            action=self._action,
        )
        # Any other unit id answers like a Modbus gateway with no such device behind it.
        others = SimDevice(
            id=0,
            simdata=[SimData(address=a, count=2, values=0, datatype=DataType.REGISTERS) for a in (0, 40000, 50000)],
            action=self._wrong_unit,
        )
        return [device, others]

    async def start(self) -> None:
        """Start listening."""
        if self.sslctx is not None:
            server: _Server | _TlsServer = _TlsServer(self._devices(), address=(self.host, self.port),
                                                     sslctx=self.sslctx)
        else:
            server = _Server(self._devices(), address=(self.host, self.port))
        server.emulator = self
        await server.serve_forever(background=True)
        self._server = server
        runtime = server.context.devices[self.unit_id]  # the live register list, for refreshes
        self._start_address, _, self._registers, _ = runtime.block["x"]

    async def stop(self) -> None:
        """Stop listening and close connections."""
        if self._server is not None:
            await self._server.shutdown()
            self._server = None

    def drop_connections(self) -> None:
        """Close every client connection now."""
        if self._server is None:
            return
        for conn in list(self._server.active_connections.values()):
            if conn.transport is not None:
                conn.transport.close()

    @property
    def connection_count(self) -> int:
        return 0 if self._server is None else len(self._server.active_connections)

    # -- physics --------------------------------------------------------------------------
    def now_s(self) -> float:
        """Simulated time since start [s]."""
        return (self._clock() - self._t0) * self.time_scale

    def advance(self) -> None:
        """Step the plant to the current simulated time."""
        now = self.now_s()
        dt = now - self._last_s
        if dt <= 0:
            return
        self._last_s = now
        p = self.physics
        wall = self._clock()
        if p.battery is not None and p.battery_spec is not None:
            native = p.setpoint.active(wall)
            kw = 0.0 if native is None else native * p.native_sign
            p.battery = step_battery(p.battery_spec, p.battery, kw, dt)
        if p.pv is not None and p.pv_spec is not None:
            p.pv = step_pv(p.pv_spec, p.pv, p.available_pv_kw(now), p.setpoint.active(wall), dt)
        if p.meter is not None:
            p.meter = step_counters(p.meter, p.meter_power_kw(now), dt)

    def _live(self) -> dict[int, dict[str, Value]]:
        """Raw values of live points per model, from the plant state."""
        p = self.physics
        f = self.faults
        sign = -1 if f.flip_sign else 1
        out: dict[int, dict[str, Value]] = {1: {"SN": f.serial or self.identity.serial}}
        self._counter_offset_kwh += f.counter_step_kwh
        shift = self._counter_offset_kwh
        scale = 10.0**self._w_sf
        if p.battery is not None and p.battery_spec is not None:
            power_w = p.battery.power_kw * 1000.0 * p.native_sign * sign
            soc = p.battery.soc_pct(p.battery_spec)
            inj, absb = p.battery.discharged_kwh, p.battery.charged_kwh
        elif p.pv is not None:
            power_w, soc, inj, absb = p.pv.power_kw * 1000.0 * sign, None, p.pv.produced_kwh, 0.0
        else:
            assert p.meter is not None
            power_w, soc, inj, absb = p.meter.power_kw * 1000.0 * sign, None, p.meter.import_kwh, 0.0
        raw_w = None if f.not_implemented else int(round(power_w / scale))
        raw_soc = None if (f.not_implemented or soc is None) else int(round(soc * 10))
        if f.garbage and raw_soc is not None:
            raw_soc = 1500  # 150.0 %: out of range
        inj = max(inj + shift, 0.0)
        wh = {"WH": int(inj * 1000.0)}
        out.update({
            101: {"W": raw_w, "Hz": 5000, "PhVphA": 2020, **wh, "St": 4},
            103: {"W": raw_w, "Hz": 5000, "PhVphA": 2020, **wh, "St": 4},
            701: {"W": raw_w, "Hz": 5000, "LNV": 2020, "TotWhInj": int(inj * 1000.0), "TotWhAbs": int(absb * 1000.0)},
            713: {"SoC": raw_soc},
            802: {"SoC": raw_soc, "W": raw_w, "Hb": int(self.now_s()) % 0xFFFF},
            124: {"ChaState": raw_soc},
        })
        out[102] = out[101]
        if p.meter is not None:
            meter = {"W": raw_w, "Hz": 5000, "PhV": 2020, "TotWhImp": int(max(p.meter.import_kwh + shift, 0.0) * 1000.0),
                     "TotWhExp": int(p.meter.export_kwh * 1000.0)}
            if f.flip_sign:
                meter["TotWhImp"], meter["TotWhExp"] = meter["TotWhExp"], meter["TotWhImp"]
            out.update({m: meter for m in (201, 202, 203, 204)})
        for m in (101, 102, 103, 701, 201, 202, 203, 204, 802):
            if m in out:
                out[m] = {**out[m], "W_SF": 99 if f.garbage else self._w_sf}
        return out

    def _find_static(self, name: str) -> int:
        for model_id in self.map.models:
            value = self._initial(model_id).get(name)
            if value is not None:
                return int(value)
        return 0

    def _refresh(self) -> None:
        self.advance()
        assert self._registers is not None
        for model_id, raw in self._live().items():
            if model_id not in self.map.addresses:
                continue
            mdef = model_def(model_id)
            present = {k: v for k, v in raw.items() if k in mdef.points}
            encode_points(self._registers, self._start_address, self.map.addresses[model_id], mdef, present)

    # -- request handling -----------------------------------------------------------------
    async def _wrong_unit(self, *_args) -> ExcCodes:
        return ExcCodes.GATEWAY_NO_RESPONSE

    async def _action(self, function_code, start_address, address, count, registers, set_values):  # noqa: ANN001
        """pymodbus SimDevice hook: faults, then refresh on reads or apply control writes."""
        self.requests += 1
        f = self.faults
        if f.delay_s > 0:
            await asyncio.sleep(f.delay_s)
        if f.drop_next > 0:
            f.drop_next -= 1
            self.drop_connections()
            return None
        if f.exception_code is not None:
            return ExcCodes(f.exception_code)
        if set_values is None:
            self._refresh()
            return None
        return self._apply_write(address, list(set_values), registers, start_address)

    def _model_at(self, address: int) -> int | None:
        for model_id, model_address in self.map.addresses.items():
            if model_address <= address < model_address + model_def(model_id).full_length:
                return model_id
        return None

    def _apply_write(self, address: int, values: list[int], registers: list[int], start: int) -> ExcCodes | None:
        model_id = self._model_at(address)
        if model_id is None or not writable_span(model_def(model_id), self.map.addresses[model_id], address, len(values)):
            return ExcCodes.ILLEGAL_ADDRESS
        registers[address - start : address - start + len(values)] = values
        self.advance()
        self._apply_controls(model_id, registers, start)
        return None

    def _read_points(self, model_id: int, names: Sequence[str], registers: list[int], start: int) -> dict[str, Value]:
        return decode_raw_points(registers, start, self.map.addresses[model_id], model_def(model_id), names)

    def _apply_controls(self, model_id: int, registers: list[int], start: int) -> None:
        p = self.physics
        now = self._clock()  # revert timers run on the wall clock, whatever the time scale
        pts = lambda *names: self._read_points(model_id, names, registers, start)  # noqa: E731
        if model_id == 704 and p.battery is not None:
            v = pts("WSetEna", "WSet", "WSetRvrtTms", "WSet_SF")
            if v["WSetEna"] == 1 and v["WSet"] is not None:
                kw = float(v["WSet"]) * 10.0 ** int(v["WSet_SF"] or 0) / 1000.0
                p.setpoint = _Setpoint(kw, now + v["WSetRvrtTms"] if v["WSetRvrtTms"] else None)
            else:
                p.setpoint = _Setpoint()
        elif model_id == 704 and p.pv is not None:
            self._pv_limit(pts("WMaxLimPctEna", "WMaxLimPct", "WMaxLimPctRvrtTms"),
                           ("WMaxLimPctEna", "WMaxLimPct", "WMaxLimPctRvrtTms"), -1, now)
        elif model_id == 123 and p.pv is not None:
            self._pv_limit(pts("WMaxLim_Ena", "WMaxLimPct", "WMaxLimPct_RvrtTms"),
                           ("WMaxLim_Ena", "WMaxLimPct", "WMaxLimPct_RvrtTms"), -1, now)
        elif model_id == 124 and p.battery is not None and p.battery_spec is not None:
            v = pts("StorCtl_Mod", "OutWRte", "InWRte", "InOutWRte_RvrtTms", "WChaMax")
            mode = int(v["StorCtl_Mod"] or 0)
            max_kw = p.battery_spec.max_charge_kw
            if mode == 0:
                p.setpoint = _Setpoint()
                return
            rate_pct = float(v["InWRte"] or 0) / 10.0 if mode & 1 else float(v["OutWRte"] or 0) / 10.0
            kw = -rate_pct / 100.0 * max_kw if mode & 1 else rate_pct / 100.0 * max_kw
            rvrt = v["InOutWRte_RvrtTms"]
            p.setpoint = _Setpoint(kw, now + rvrt if rvrt else None)
        elif model_id == 802:
            beat = pts("CtrlHb")["CtrlHb"]
            p.heartbeat = int(beat or 0)

    def _pv_limit(self, v: dict[str, Value], names: tuple[str, str, str], pct_sf: int, now: float) -> None:
        p = self.physics
        assert p.pv_spec is not None
        ena, pct, rvrt = (v[n] for n in names)
        if ena == 1 and pct is not None:
            limit_kw = float(pct) * 10.0**pct_sf / 100.0 * p.pv_spec.rated_kw
            p.setpoint = _Setpoint(limit_kw, now + rvrt if rvrt else None)
        else:
            p.setpoint = _Setpoint()

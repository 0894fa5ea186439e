"""An emulated Modbus TCP relay board on pymodbus's server: coils, feedback inputs, watchdog.

Coils (FC1/FC5/FC15) drive contactors; each contactor follows its coil after
``contactor_delay_s`` and its auxiliary contact is served as a discrete input (FC2, set = pulled
in). A holding register holds the comm-loss watchdog timeout (0 = off): without a Modbus write
for that long every coil returns to its power-on state, as real boards do. Fault knobs
(:class:`RelayFaults`) are flipped by tests while the server runs: a stuck channel whose
contactor does not follow its coil, a reboot (every output reset), no reply at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simutils import SimUtils

_COIL_WRITES = (5, 15)
_REGISTER_WRITES = (6, 16)


@dataclass(frozen=True)
class RelayBoardSpec:
    """The emulated board's register map and behaviour.

    Attributes
    ----------
    channels : int
    coil_base, discrete_input_base : int
        Address of channel 0's coil and feedback input.
    watchdog_register : int or None
        Holding register of the watchdog timeout (None: the board has none).
    watchdog_unit_s : float
        Seconds per count of the watchdog register [s].
    power_on_energised : bool
        Coil state at power-on and after a watchdog reset.
    contactor_delay_s : float
        Time a contactor takes to follow its coil [s].
    """

    channels: int = 8
    coil_base: int = 0
    discrete_input_base: int = 0
    watchdog_register: int | None = 100
    watchdog_unit_s: float = 1.0
    power_on_energised: bool = False
    contactor_delay_s: float = 0.0


@dataclass
class RelayFaults:
    """Fault knobs.

    Attributes
    ----------
    stuck_channels : set of int
        Channels whose contactor no longer follows its coil (welded or unpowered).
    no_reply : bool
        Swallow every request without an answer (the client times out).
    """

    stuck_channels: set[int] = field(default_factory=set)
    no_reply: bool = False


class RelayBoardEmulator:
    """One emulated relay board on a TCP port.

    Parameters
    ----------
    spec : RelayBoardSpec
    host, port : str, int
        Listening address (pick a free port: pymodbus does not support port 0).
    unit_id : int
    clock : callable
        Monotonic clock [s]; the watchdog and the contactor delay use it.
    faults : RelayFaults or None
    """

    def __init__(self, spec: RelayBoardSpec, *, host: str = "127.0.0.1", port: int, unit_id: int = 1,
                 clock: Callable[[], float] = time.monotonic, faults: RelayFaults | None = None) -> None:
        self.spec = spec
        self.host, self.port, self.unit_id = host, port, unit_id
        self.faults = faults or RelayFaults()
        self._clock = clock
        n = spec.channels
        self.coils: list[bool] = [spec.power_on_energised] * n
        self.contactors: list[bool] = [spec.power_on_energised] * n
        self._changed_s: list[float] = [clock()] * n
        self.watchdog_raw = 0
        self._last_write_s = clock()
        self.reboots = 0
        self.watchdog_resets = 0
        self.requests = 0
        self.coil_writes = 0
        self._server: ModbusTcpServer | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def _device(self) -> SimDevice:
        s = self.spec
        holding = [SimData(s.watchdog_register, count=1, values=0, datatype=DataType.REGISTERS)] \
            if s.watchdog_register is not None else []
        return SimDevice(
            id=self.unit_id,
            simdata=([SimData(s.coil_base, count=s.channels, values=False, datatype=DataType.BITS)],
                     [SimData(s.discrete_input_base, count=s.channels, values=False, datatype=DataType.BITS)],
                     holding or [SimData(0, count=1, values=0, datatype=DataType.REGISTERS, readonly=True)],
                     [SimData(0, count=1, values=0, datatype=DataType.REGISTERS)]),
            action=self._action,
        )

    async def start(self) -> None:
        """Start listening."""
        server = ModbusTcpServer([self._device()], address=(self.host, self.port))
        await server.serve_forever(background=True)
        self._server = server

    async def stop(self) -> None:
        """Stop listening and close connections."""
        if self._server is not None:
            await self._server.shutdown()
            self._server = None

    # -- the board ------------------------------------------------------------------------
    def _set_coil(self, channel: int, energised: bool, now: float) -> None:
        if self.coils[channel] != energised:
            self.coils[channel] = energised
            self._changed_s[channel] = now

    def advance(self) -> None:
        """Let contactors follow their coils and the watchdog expire, up to now."""
        now = self._clock()
        timeout_s = self.watchdog_raw * self.spec.watchdog_unit_s
        if timeout_s > 0 and now - self._last_write_s >= timeout_s:
            self.watchdog_resets += 1
            self._reset(now)
            self._last_write_s = now
        for ch in range(self.spec.channels):
            if ch in self.faults.stuck_channels:
                continue
            if now - self._changed_s[ch] >= self.spec.contactor_delay_s:
                self.contactors[ch] = self.coils[ch]

    def _reset(self, now: float) -> None:
        for ch in range(self.spec.channels):
            self._set_coil(ch, self.spec.power_on_energised, now)

    def reboot(self) -> None:
        """Power-cycle the board: every coil returns to its power-on state (the watchdog
        setting is kept, as boards keep it in EEPROM)."""
        self.reboots += 1
        self._reset(self._clock())
        self.advance()

    def circuit_energised(self, channel: int) -> bool:
        """True when the channel's contactor is pulled in now."""
        self.advance()
        return self.contactors[channel]

    # -- request handling -------------------------------------------------------------------
    async def _action(self, function_code, start_address, address, count, registers, set_values):  # noqa: ANN001
        """pymodbus SimDevice hook: faults, then the board's state in and out of the registers."""
        self.requests += 1
        while self.faults.no_reply:
            await asyncio.sleep(0.02)
        self.advance()
        now = self._clock()
        if set_values is not None and function_code in _COIL_WRITES + _REGISTER_WRITES:
            self._last_write_s = now
        if set_values is not None and function_code in _COIL_WRITES:
            self.coil_writes += 1
            for offset, value in enumerate(set_values):
                channel = address - self.spec.coil_base + offset
                if not 0 <= channel < self.spec.channels:
                    return ExcCodes.ILLEGAL_ADDRESS
                self._set_coil(channel, bool(value), now)
            self.advance()
        elif set_values is not None and function_code in _REGISTER_WRITES:
            self.watchdog_raw = int(set_values[0])
        elif function_code in (1, 5, 15):
            _store_bits(registers, start_address, self.spec.coil_base, self.coils)
        elif function_code == 2:
            _store_bits(registers, start_address, self.spec.discrete_input_base, self.contactors)
        return None


def _store_bits(registers: list[int], block_start_register: int, first_bit: int, bits: list[bool]) -> None:
    """Write ``bits`` at bit address ``first_bit`` into pymodbus's packed bit block, in place."""
    offset = first_bit - block_start_register * 16
    words = (offset + len(bits) + 15) // 16
    packed = SimUtils.registersToBits(registers[:words])
    packed[offset : offset + len(bits)] = bits
    registers[:words] = SimUtils.bitsToRegisters(packed)

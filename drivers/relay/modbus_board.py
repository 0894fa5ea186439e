"""Modbus TCP relay board: coils switch contactors, discrete inputs read their feedback.

A board is described by a :class:`RelayBoardMap` (from the device profile, never hard-coded):
where the coils (FC1 read, FC5 write one, FC15 write many) and the feedback inputs (FC2) start,
how the outputs are wired (an energised output disconnects its circuit, or connects it), and the
comm-loss watchdog holding register. The driver speaks gridctl's switch language: ``on`` means
the circuit is connected (served).

The watchdog: at connect the driver writes the timeout into the board's watchdog register; a
board that receives no Modbus write for that long resets every output to its power-on state.
gridctl's controller commands every switched channel every cycle and the daemon re-writes them
all at least every third of the timeout (and any channel the board holds wrongly at once),
which keeps the watchdog fed while the controller lives and lets the loads fall back to their
wiring's default when it dies.

A board that rebooted (power loss, watchdog expiry) holds its power-on outputs: that shows in
:attr:`SwitchState.commanded_on`, read back from the coils, and the shedding logic re-drives it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from drivers import errors
from drivers.capabilities import DeviceIdentity, DeviceReading, SwitchState
from drivers.errors import PermanentDeviceError, TransientDeviceError
from drivers.profile import ModbusEndpoint

T = TypeVar("T")

_ILLEGAL_FUNCTION = 0x01
_ILLEGAL_ADDRESS = 0x02
_BUSY_CODES = {0x05, 0x06}


@dataclass(frozen=True)
class RelayBoardMap:
    """Register map and wiring of one relay board.

    Attributes
    ----------
    channels : int
        Channels gridctl uses, 0 .. channels-1.
    coil_base : int
        Coil address of channel 0.
    discrete_input_base : int or None
        Discrete input address of channel 0's feedback (set = contactor pulled in, i.e. it follows
        its energised coil); None when the board has no feedback.
    watchdog_register : int or None
        Holding register of the comm-loss watchdog timeout; None without a watchdog.
    watchdog_unit_s : float
        Seconds per count of the watchdog register [s].
    watchdog_timeout_s : float
        Timeout written at connect [s].
    energised_disconnects : bool
        True for normally-closed wiring (an energised output disconnects its circuit).
    retries : int
        Extra attempts of a request after a transient failure, each on a new connection.
    backoff_s : float
        First retry delay [s], doubled per attempt.
    """

    channels: int
    coil_base: int = 0
    discrete_input_base: int | None = 0
    watchdog_register: int | None = None
    watchdog_unit_s: float = 1.0
    watchdog_timeout_s: float = 30.0
    energised_disconnects: bool = True
    retries: int = 1
    backoff_s: float = 0.05

    def __post_init__(self) -> None:
        if not 1 <= self.channels <= 2000:
            raise ValueError("channels must be within 1..2000")
        if self.watchdog_unit_s <= 0:
            raise ValueError("watchdog_unit_s must be > 0")

    def energised(self, on: bool) -> bool:
        """Coil value that puts a circuit connected (``on``) or disconnected."""
        return on != self.energised_disconnects

    def on(self, energised: bool) -> bool:
        """Circuit connected for a coil (or contactor) that is ``energised``."""
        return energised != self.energised_disconnects

    @property
    def watchdog_raw(self) -> int:
        """The timeout in register counts."""
        return max(1, round(self.watchdog_timeout_s / self.watchdog_unit_s))


class ModbusRelayBoard:
    """A relay board on Modbus TCP, implementing ``Device`` and ``SwitchesLoads``.

    Parameters
    ----------
    endpoint : ModbusEndpoint
        Host, port, unit id and per-request timeout (``base_address`` is not used).
    board : RelayBoardMap
    name : str or None
        Device id for messages; the endpoint label by default.
    """

    def __init__(self, endpoint: ModbusEndpoint, board: RelayBoardMap, name: str | None = None) -> None:
        self.endpoint = endpoint
        self.board = board
        self.name = name or endpoint.label
        self._client: AsyncModbusTcpClient | None = None
        self._lock = asyncio.Lock()

    # -- connection -----------------------------------------------------------------------
    async def _open(self) -> None:
        if self._client is not None and self._client.connected:
            return
        self._drop()
        ep = self.endpoint
        # pymodbus's own retries and reconnects are off: this class owns that policy.
        client = AsyncModbusTcpClient(ep.host, port=ep.port, timeout=ep.timeout_s, retries=0, reconnect_delay=0)
        if not await client.connect():
            client.close()
            raise TransientDeviceError(self.name, errors.CONNECTION_REFUSED,
                                       f"cannot connect to relay board at {ep.host}:{ep.port}")
        self._client = client

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def connect(self) -> None:
        """Connect, check the coil map answers and arm the watchdog.

        Raises
        ------
        TransientDeviceError
            Refused, timed out, busy.
        PermanentDeviceError
            The board has no such coils, inputs or watchdog register (wrong profile or unit id).
        """
        await self._call(lambda: self._read_bits("coils", self.board.coil_base))
        if self.board.watchdog_register is not None:
            await self._call(self._arm_watchdog)

    async def close(self) -> None:
        """Close the connection; never raises."""
        async with self._lock:
            self._drop()

    async def read_identity(self) -> DeviceIdentity:
        """Relay boards carry no identity registers: the profile is all there is."""
        return DeviceIdentity(manufacturer=None, model=f"Modbus relay board, {self.board.channels} channels",
                              serial=None)

    # -- requests -------------------------------------------------------------------------
    async def _call(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run ``op`` under the board lock, retrying transient failures on a new connection."""
        attempts = self.board.retries + 1
        async with self._lock:
            for attempt in range(attempts):
                try:
                    await self._open()
                    return await op()
                except TransientDeviceError:
                    self._drop()
                    if attempt + 1 >= attempts:
                        raise
                    await asyncio.sleep(self.board.backoff_s * 2**attempt)
                except asyncio.CancelledError:
                    self._drop()  # a late answer must not be taken for the next request's
                    raise
        raise AssertionError("unreachable")

    async def _request(self, what: str, send: Callable[[AsyncModbusTcpClient], Awaitable]):  # noqa: ANN202
        assert self._client is not None
        try:
            response = await send(self._client)
        except ModbusIOException as exc:
            raise TransientDeviceError(self.name, errors.TIMEOUT, f"no answer {what}") from exc
        except (ConnectionException, ModbusException, OSError) as exc:
            raise TransientDeviceError(self.name, errors.CONNECTION_LOST, f"connection lost {what}: {exc}") from exc
        if response.isError():
            code = getattr(response, "exception_code", None)
            detail = f"board answered Modbus exception {code} {what}"
            if code in _BUSY_CODES:
                raise TransientDeviceError(self.name, errors.BUSY, detail)
            if code in (_ILLEGAL_FUNCTION, _ILLEGAL_ADDRESS):
                raise PermanentDeviceError(self.name, errors.BAD_ADDRESS, detail + " (check the relay profile)")
            raise TransientDeviceError(self.name, errors.EXCEPTION_RESPONSE, detail)
        return response

    async def _read_bits(self, table: str, base: int) -> list[bool]:
        n, unit = self.board.channels, self.endpoint.unit_id
        if table == "coils":
            rr = await self._request(f"reading coils {base}..{base + n - 1}",
                                     lambda c: c.read_coils(base, count=n, device_id=unit))
        else:
            rr = await self._request(f"reading discrete inputs {base}..{base + n - 1}",
                                     lambda c: c.read_discrete_inputs(base, count=n, device_id=unit))
        if len(rr.bits) < n:
            raise TransientDeviceError(self.name, errors.EXCEPTION_RESPONSE, f"short answer reading {table} at {base}")
        return list(rr.bits[:n])

    async def _arm_watchdog(self) -> None:
        register, raw = self.board.watchdog_register, self.board.watchdog_raw
        if raw > 0xFFFF:
            raise PermanentDeviceError(self.name, errors.TYPE_MISMATCH,
                                       f"watchdog timeout {self.board.watchdog_timeout_s} s does not fit register {register}")
        await self._request(f"writing watchdog register {register}",
                            lambda c: c.write_register(register, raw, device_id=self.endpoint.unit_id))

    def _coil(self, channel: int) -> int:
        if not 0 <= channel < self.board.channels:
            raise PermanentDeviceError(self.name, errors.BAD_CONFIGURATION,
                                       f"channel {channel} out of range 0..{self.board.channels - 1}")
        return self.board.coil_base + channel

    # -- SwitchesLoads ----------------------------------------------------------------------
    async def set_switch(self, channel: int, on: bool) -> None:
        """Command one channel connected (True) or disconnected (False) with FC5."""
        coil, value = self._coil(channel), self.board.energised(on)
        await self._call(lambda: self._request(
            f"writing coil {coil}", lambda c: c.write_coil(coil, value, device_id=self.endpoint.unit_id)))

    async def set_switches(self, states: Mapping[int, bool]) -> None:
        """Command several channels, one FC15 request per run of adjacent channels."""
        for first, values in _runs(states):
            self._coil(first + len(values) - 1)  # the run's last channel exists too
            coil, bits = self._coil(first), [self.board.energised(on) for on in values]
            await self._call(lambda coil=coil, bits=bits: self._request(
                f"writing coils {coil}..{coil + len(bits) - 1}",
                lambda c: c.write_coils(coil, bits, device_id=self.endpoint.unit_id)))

    async def read_switches(self) -> tuple[SwitchState, ...]:
        """Commanded state (coils, FC1) and feedback (discrete inputs, FC2) of every channel."""
        async def both() -> tuple[list[bool], list[bool] | None]:
            coils = await self._read_bits("coils", self.board.coil_base)
            base = self.board.discrete_input_base
            inputs = None if base is None else await self._read_bits("inputs", base)
            return coils, inputs

        coils, inputs = await self._call(both)
        return tuple(
            SwitchState(channel=ch, commanded_on=self.board.on(coils[ch]),
                        feedback_on=None if inputs is None else self.board.on(inputs[ch]))
            for ch in range(self.board.channels)
        )

    async def read_snapshot(self) -> DeviceReading:
        """The switches, in one poll."""
        return DeviceReading(switches=await self.read_switches())


def _runs(states: Mapping[int, bool]) -> list[tuple[int, list[bool]]]:
    """``{0: a, 1: b, 5: c}`` -> ``[(0, [a, b]), (5, [c])]``."""
    runs: list[tuple[int, list[bool]]] = []
    for channel in sorted(states):
        if runs and runs[-1][0] + len(runs[-1][1]) == channel:
            runs[-1][1].append(states[channel])
        else:
            runs.append((channel, [states[channel]]))
    return runs

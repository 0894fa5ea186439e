"""SunSpec Modbus TCP client: discovery, model-chain walk, decoded reads and typed writes.

One connection per device, shared by reads and writes and serialised by a lock, because many
inverters accept a single Modbus client. Transient failures are retried after reconnecting,
with exponential backoff; permanent ones raise at once.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from pymodbus.client import AsyncModbusTcpClient, AsyncModbusTlsClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from drivers import errors
from drivers.errors import PermanentDeviceError, TransientDeviceError
from drivers.profile import SUNSPEC_BASE_ADDRESSES, DeviceQuirks, ModbusEndpoint
from drivers.sunspec.models import (
    ModelDef,
    ModelDefinitionMissing,
    Value,
    decode_model,
    encode_raw,
    model_def,
    needed_points,
    span_of,
    scale_factor_of,
    to_raw,
)

log = logging.getLogger(__name__)

SUNSPEC_MARKER = (0x5375, 0x6E53)  # "SunS"
END_MODEL_ID = 0xFFFF
_MAX_MODELS = 64

# Modbus exception codes and their names (MODBUS Application Protocol v1.1b3, section 7).
_ILLEGAL_ADDRESS = 0x02
EXCEPTION_NAMES = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge",
    0x06: "server device busy",
    0x08: "memory parity error",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond",
}
_BUSY_CODES = {0x05, 0x06}
_GATEWAY_CODES = {0x0A, 0x0B}

T = TypeVar("T")


@dataclass(frozen=True)
class ModelLocation:
    """Where a model sits in the device's register map.

    Attributes
    ----------
    model_id : int
    address : int
        Register of the model's ID point.
    length : int
        Model length L as reported by the device [registers, excluding ID and L].
    """

    model_id: int
    address: int
    length: int


def _tls_context(endpoint: ModbusEndpoint) -> ssl.SSLContext:
    tls = endpoint.tls
    assert tls is not None
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls.ca_path)
    # Field devices are addressed by IP and their certificates rarely carry it as a SAN;
    # the certificate chain is still verified against the configured CA.
    ctx.check_hostname = False
    if tls.certificate_path:
        ctx.load_cert_chain(tls.certificate_path, tls.private_key_path)
    return ctx


class ModbusExceptionResponse(TransientDeviceError):
    """The device answered a request with a Modbus exception ``code`` (not busy, not address)."""

    def __init__(self, device: str, code: int | None, detail: str) -> None:
        super().__init__(device, errors.EXCEPTION_RESPONSE, detail)
        self.code = code


def describe_exception(code: int | None) -> str:
    """``Modbus exception 4 (server device failure)`` for a Modbus exception code."""
    name = EXCEPTION_NAMES.get(code) if code is not None else None
    return f"Modbus exception {code} ({name})" if name else f"Modbus exception {code}"


class SunSpecClient:
    """Connection to one SunSpec Modbus device.

    Parameters
    ----------
    endpoint : ModbusEndpoint
    quirks : DeviceQuirks
    """

    def __init__(self, endpoint: ModbusEndpoint, quirks: DeviceQuirks | None = None) -> None:
        self.endpoint = endpoint
        self.quirks = quirks or DeviceQuirks()
        self.name = endpoint.label
        self.base_address: int | None = None
        self.models: dict[int, ModelLocation] = {}
        self.chain: list[ModelLocation] = []
        self._client: AsyncModbusTcpClient | None = None
        self._lock = asyncio.Lock()
        self._last_request_s = 0.0
        self._sf_cache: dict[int, dict[str, Value]] = {}

    # -- connection -----------------------------------------------------------------------
    def _new_client(self) -> AsyncModbusTcpClient:
        ep = self.endpoint
        # pymodbus's own retries and auto-reconnect are off: this class owns that policy.
        common = {"port": ep.port, "timeout": ep.timeout_s, "retries": 0, "reconnect_delay": 0}
        if ep.tls is not None:
            return AsyncModbusTlsClient(ep.host, sslctx=_tls_context(ep), **common)
        return AsyncModbusTcpClient(ep.host, **common)

    async def _diagnose_connect_failure(self) -> errors.DeviceError:
        """Tell refused from timed out, which pymodbus's connect() reports alike."""
        ep = self.endpoint
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(ep.host, ep.port), timeout=ep.timeout_s
            )
            writer.close()
        except ConnectionRefusedError:
            return TransientDeviceError(self.name, errors.CONNECTION_REFUSED, "connection refused")
        except (TimeoutError, asyncio.TimeoutError):
            return TransientDeviceError(self.name, errors.TIMEOUT, "connect timed out")
        except OSError as exc:
            return TransientDeviceError(self.name, errors.CONNECTION_REFUSED, f"cannot connect: {exc}")
        if ep.tls is not None:
            return PermanentDeviceError(
                self.name, errors.CERTIFICATE_REJECTED, "TLS handshake failed (certificate rejected?)"
            )
        return TransientDeviceError(self.name, errors.CONNECTION_LOST, "connection closed at once")

    async def _open(self) -> None:
        if self._client is not None and self._client.connected:
            return
        await self._close_transport()
        client = self._new_client()
        if not await client.connect():
            client.close()
            raise await self._diagnose_connect_failure()
        self._client = client

    async def _close_transport(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def connect(self) -> None:
        """Open the connection, find the SunSpec base and walk the model chain.

        Raises
        ------
        TransientDeviceError
            Connection refused, timeout.
        PermanentDeviceError
            No SunSpec marker, wrong unit id, malformed model chain.
        """
        await self._call(self._open)
        self.base_address = await self._find_base()
        await self._walk_chain()

    async def close(self) -> None:
        """Close the connection; never raises."""
        async with self._lock:
            await self._close_transport()

    # -- requests -------------------------------------------------------------------------
    async def _call(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run ``op`` under the device lock, retrying transient failures after reconnecting."""
        attempts = self.quirks.retries + 1
        async with self._lock:
            for attempt in range(attempts):
                try:
                    await self._open()
                    return await op()
                except TransientDeviceError:
                    await self._close_transport()
                    if attempt + 1 >= attempts:
                        raise
                    await asyncio.sleep(self.quirks.backoff_s * 2**attempt)
                except asyncio.CancelledError:
                    # A caller's timeout interrupted a request: its answer may still arrive, so
                    # start the next call on a fresh connection.
                    await self._close_transport()
                    raise
        raise AssertionError("unreachable")

    async def _pace(self) -> None:
        delay = self.quirks.inter_request_delay_s
        if delay > 0:
            wait = self._last_request_s + delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        self._last_request_s = time.monotonic()

    def _check(self, response, what: str) -> None:
        if not response.isError():
            return
        code = getattr(response, "exception_code", None)
        detail = f"device answered {describe_exception(code)} {what}"
        if code in _BUSY_CODES:
            raise TransientDeviceError(self.name, errors.BUSY, detail)
        if code in _GATEWAY_CODES:
            raise PermanentDeviceError(
                self.name, errors.WRONG_UNIT_ID, f"{detail} (no device with unit id {self.endpoint.unit_id})"
            )
        if code == _ILLEGAL_ADDRESS:
            raise PermanentDeviceError(self.name, errors.BAD_ADDRESS, detail)
        raise ModbusExceptionResponse(self.name, code, detail)

    async def _raw_read(self, address: int, count: int) -> list[int]:
        assert self._client is not None
        regs: list[int] = []
        step = self.quirks.max_registers_per_read
        for start in range(address, address + count, step):
            n = min(step, address + count - start)
            await self._pace()
            try:
                rr = await self._client.read_holding_registers(
                    start, count=n, device_id=self.endpoint.unit_id
                )
            except ModbusIOException as exc:
                raise TransientDeviceError(self.name, errors.TIMEOUT, f"no response reading {start}: {exc}") from exc
            except (ConnectionException, ModbusException, OSError) as exc:
                raise TransientDeviceError(self.name, errors.CONNECTION_LOST, f"reading {start}: {exc}") from exc
            self._check(rr, f"at register {start} (reading {n})")
            if len(rr.registers) != n:
                raise TransientDeviceError(self.name, errors.EXCEPTION_RESPONSE, f"short read at {start}")
            regs.extend(rr.registers)
        return regs

    async def _raw_write(self, address: int, values: list[int]) -> None:
        assert self._client is not None
        await self._pace()
        try:
            wr = await self._client.write_registers(address, values, device_id=self.endpoint.unit_id)
        except ModbusIOException as exc:
            raise TransientDeviceError(self.name, errors.TIMEOUT, f"no response writing {address}: {exc}") from exc
        except (ConnectionException, ModbusException, OSError) as exc:
            raise TransientDeviceError(self.name, errors.CONNECTION_LOST, f"writing {address}: {exc}") from exc
        self._check(wr, f"at register {address} (writing {len(values)})")

    async def read_registers(self, address: int, count: int) -> list[int]:
        """Read ``count`` holding registers from ``address`` (chunked, retried)."""
        return await self._call(lambda: self._raw_read(address, count))

    async def write_registers(self, address: int, values: list[int]) -> None:
        """Write holding registers from ``address`` (retried)."""
        await self._call(lambda: self._raw_write(address, values))

    # -- discovery ------------------------------------------------------------------------
    async def _find_base(self) -> int:
        candidates = (
            (self.endpoint.base_address,) if self.endpoint.base_address is not None else SUNSPEC_BASE_ADDRESSES
        )
        refused_at: list[tuple[int, ModbusExceptionResponse]] = []
        for base in candidates:
            try:
                regs = await self.read_registers(base, 2)
            except PermanentDeviceError as exc:
                if exc.reason == errors.WRONG_UNIT_ID:
                    raise
                continue  # illegal data address: no register map at this base
            except ModbusExceptionResponse as exc:
                refused_at.append((base, exc))  # the device answered, but with an exception
                continue
            except TransientDeviceError as exc:
                if self.endpoint.tls is not None and exc.reason in (errors.TIMEOUT, errors.CONNECTION_LOST):
                    # With TLS 1.3 the device checks our certificate after the handshake and
                    # then drops the session: the first request is where a rejection shows.
                    raise PermanentDeviceError(
                        self.name, errors.CERTIFICATE_REJECTED,
                        "TLS session dropped by the device (client certificate rejected?)",
                    ) from exc
                if exc.reason == errors.TIMEOUT:
                    raise TransientDeviceError(
                        self.name, errors.TIMEOUT,
                        f"no answer at register {base} (device slow, or wrong unit id {self.endpoint.unit_id}?)",
                    ) from exc
                raise
            if tuple(regs) == SUNSPEC_MARKER:
                return base
        if refused_at:
            # An exception such as 4 (server device failure) is not a missing marker: saying
            # so would send the installer to check wiring and base address for nothing.
            (first_base, first), others = refused_at[0], [b for b, _ in refused_at[1:]]
            also = f" (and at {', '.join(map(str, others))})" if others else ""
            raise TransientDeviceError(
                self.name, errors.EXCEPTION_RESPONSE,
                f"device answered {describe_exception(first.code)} at register {first_base}{also}",
            )
        raise PermanentDeviceError(
            self.name, errors.NO_SUNSPEC_MARKER,
            "no SunSpec marker 'SunS' at " + ", ".join(str(b) for b in candidates),
        )

    async def _walk_chain(self) -> None:
        assert self.base_address is not None
        address = self.base_address + 2
        chain: list[ModelLocation] = []
        for _ in range(_MAX_MODELS):
            model_id, length = await self.read_registers(address, 2)
            if model_id == END_MODEL_ID:
                break
            chain.append(ModelLocation(model_id, address, length))
            address += 2 + length
            if address > 0xFFFF:
                break
        else:
            raise PermanentDeviceError(self.name, errors.NO_SUNSPEC_MARKER, "model chain does not end")
        self.chain = chain
        self.models = {}
        for loc in chain:
            self.models.setdefault(loc.model_id, loc)

    # -- models ---------------------------------------------------------------------------
    def has_model(self, model_id: int) -> bool:
        """True when the device's chain holds ``model_id``."""
        return model_id in self.models

    def _location(self, model_id: int) -> tuple[ModelLocation, ModelDef]:
        loc = self.models.get(model_id)
        if loc is None:
            raise PermanentDeviceError(self.name, errors.MODEL_MISSING, f"SunSpec model {model_id} missing")
        try:
            return loc, model_def(model_id)
        except ModelDefinitionMissing as exc:
            raise PermanentDeviceError(self.name, errors.MODEL_MISSING, str(exc)) from exc

    async def read_model(
        self, model_id: int, points: Iterable[str] | None = None
    ) -> tuple[dict[str, Value], list[str]]:
        """Read and decode model ``model_id`` (first instance).

        With ``points``, only the registers up to the last of them are read and only they (and
        their scale factors) are decoded: a poll reads a handful of points, not whole models.

        Returns
        -------
        values : dict
            Scaled point values in the units of the SunSpec definition (W, Wh, %, V, Hz...);
            None where not implemented or garbage.
        notes : list of str
            Dropped values and why.
        """
        loc, mdef = self._location(model_id)
        wanted = None if points is None else needed_points(mdef, points)
        span = mdef.top_length if wanted is None else span_of(mdef, wanted)
        regs = await self.read_registers(loc.address, min(loc.length + 2, span))
        values, notes = decode_model(mdef, regs, wanted)
        if wanted is None:
            self._sf_cache[model_id] = {n: values[n] for n, p in mdef.points.items() if p.type == "sunssf"}
        return values, notes

    async def write_points(self, model_id: int, values: Mapping[str, float | int]) -> None:
        """Write engineering values to writable points of a model, scaled per its factors.

        Raises
        ------
        PermanentDeviceError
            Model or point missing, point read-only, value does not fit (type mismatch).
        """
        loc, mdef = self._location(model_id)
        if model_id not in self._sf_cache:
            await self.read_model(model_id)
        sfs = self._sf_cache[model_id]
        runs: list[tuple[int, list[int]]] = []
        for name in sorted(values, key=lambda n: mdef.points[n].offset if n in mdef.points else -1):
            pdef = mdef.points.get(name)
            if pdef is None or not pdef.writable:
                raise PermanentDeviceError(
                    self.name, errors.TYPE_MISMATCH, f"model {model_id} has no writable point {name}"
                )
            if pdef.offset + pdef.size > loc.length + 2:
                raise PermanentDeviceError(self.name, errors.MODEL_MISSING, f"model {model_id} too short for {name}")
            try:
                regs = encode_raw(pdef, to_raw(float(values[name]), scale_factor_of(mdef, name, sfs)))
            except ValueError as exc:
                raise PermanentDeviceError(self.name, errors.TYPE_MISMATCH, str(exc)) from exc
            address = loc.address + pdef.offset
            if runs and runs[-1][0] + len(runs[-1][1]) == address:
                runs[-1][1].extend(regs)
            else:
                runs.append((address, regs))
        for address, regs in runs:
            await self.write_registers(address, regs)

"""The block's devices as seen by the daemon: connect, read and write with per-device timeouts.

The configured ``timeout_s`` of a device is a per-request timeout, enforced by its driver on
every Modbus or OPC UA request. A read or write of several requests is given that timeout for
each of them: the handle's own deadline is only a backstop against a hung driver, and no cycle
budget ever cuts a slow but answering device below its configured timeout (such a device makes
the cycle longer; the other devices are read concurrently and are not affected).

Each device sits behind a :class:`DeviceHandle` that owns its fault: a timeout, a lost
connection or garbage (any driver exception) marks that device faulted for this cycle, closes
it and schedules a reconnect with exponential backoff; the other devices are not affected.
Setpoints are clamped to the configured ratings again here, whatever the controller sent:
no value outside a device's limits ever reaches the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from drivers.capabilities import (
    DeviceReading,
    SwitchesLoads,
    WritesBatteryPower,
    WritesHeartbeat,
    WritesLegPower,
    WritesPvLimit,
)
from drivers.errors import PermanentDeviceError
from drivers.release import release_driver
from drivers.relay.modbus_board import ModbusRelayBoard
from gridctl.config import BatteryDevice, PvInverterDevice, RouterDevice, SiteConfig, link_leg_ids
from gridctl.controller.switches import SwitchCommand
from gridctl.controller.types import Setpoint, SetpointKind

log = logging.getLogger(__name__)

#: Backoff after a transient fault: first delay and cap [s].
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
#: A permanent fault (wrong address, missing model) is retried rarely: it needs a human [s].
PERMANENT_RETRY_S = 60.0
#: Least time allowed for connecting (a secure OPC UA session needs a few seconds) [s].
CONNECT_TIMEOUT_S = 15.0
#: Requests one driver operation may need, each with its full per-request timeout: a battery
#: read is 2 requests, a setpoint write or a heartbeat at most 2 (with its first scale-factor
#: read). The operation's deadline is this many timeouts: a backstop for a hung driver only.
REQUESTS_PER_OPERATION = 4
#: Requests a connect may make (base discovery, model chain walk, identity) before it is
#: given up, each with the device's per-request timeout.
CONNECT_REQUESTS = 32

#: Switch channels are re-written at least this often even when unchanged [s] (a relay board's
#: watchdog is fed by it): a third of the board's watchdog timeout, at most this.
SWITCH_REWRITE_MAX_S = 10.0

DriverFactory = Callable[[SiteConfig, str], Any]


def switch_rewrite_s(site: SiteConfig, device: Any) -> float:
    """How often a switch device's unchanged channels are re-written [s]."""
    profile = site.device_profiles.get(device.profile)
    relay = getattr(profile, "relay", None)
    if relay is None or relay.watchdog_register is None:
        return SWITCH_REWRITE_MAX_S
    return min(SWITCH_REWRITE_MAX_S, relay.watchdog_timeout_s / 3.0)


def clamp_setpoint(device: Any, setpoint: Setpoint) -> float:
    """``setpoint.value_kw`` limited to the device's configured ratings [kW].

    Batteries: ``-max_charge_kw .. +max_discharge_kw``; PV limits: ``0 .. ac_kw``; router
    legs: ``-capacity_kw .. +capacity_kw`` of the leg (0 for an unknown leg).
    """
    value = setpoint.value_kw if math.isfinite(setpoint.value_kw) else 0.0
    if isinstance(device, BatteryDevice) and setpoint.kind is SetpointKind.BATTERY_KW:
        return min(max(value, -device.rating.max_charge_kw), device.rating.max_discharge_kw)
    if isinstance(device, PvInverterDevice) and setpoint.kind is SetpointKind.PV_LIMIT_KW:
        return min(max(value, 0.0), device.rating.ac_kw)
    if isinstance(device, RouterDevice) and setpoint.kind is SetpointKind.LEG_KW:
        cap = next((leg.capacity_kw for leg in device.legs if leg.id == setpoint.leg_id), 0.0)
        return min(max(value, -cap), cap)
    raise ValueError(f"{setpoint.device_id}: setpoint {setpoint.kind.value} does not fit a {device.kind}")


@dataclass
class DeviceHandle:
    """One device, its driver and its health.

    Attributes
    ----------
    device_id, node_id : str
    config : Device
        The validated device configuration (ratings, legs).
    timeout_s : float
        The device's configured per-request timeout [s]; its driver enforces it per request.
    fault : str or None
        Fault of the last operation, None when healthy.
    """

    device_id: str
    node_id: str
    config: Any
    factory: DriverFactory
    site: SiteConfig
    timeout_s: float
    driver: Any = None
    connected: bool = False
    fault: str | None = "not connected yet"
    failures: int = 0
    retry_at_s: float = 0.0
    heartbeat_ok: bool = True
    _caps: dict[Any, bool] = field(default_factory=dict)
    _connecting: asyncio.Future | None = None
    last_written: dict[tuple[Any, str | None], float] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=lambda: {"reads": 0, "faults": 0, "writes": 0})
    #: Switch channels' commanded state as last read (True: connected), and the last full write.
    switch_held: dict[int, bool | None] = field(default_factory=dict)
    switches_written_s: float | None = None

    async def read(self, now_s: float) -> DeviceReading | None:
        """Read the device; None and a fault on any failure.

        A disconnected device is (re)connected by a background task when its backoff has
        passed: a secure OPC UA session takes longer than a cycle, and the cycle never waits.
        """
        if not self.connected:
            connecting = self._connecting is not None and not self._connecting.done()
            if not connecting and now_s >= self.retry_at_s:
                self._connecting = asyncio.ensure_future(self._connect_in_background(now_s))
            return None
        reading = await self._guard(self.driver.read_snapshot(), now_s, "read")
        if reading is None:
            return None
        if not isinstance(reading, DeviceReading):
            await self._fail(f"read: driver returned {type(reading).__name__}", now_s, False)
            return None
        if self.fault is not None:  # the first good read of a session is the news, once
            log.info("device %s device=%s", "healthy again" if self.stats["reads"] else
                     "connected and healthy", self.device_id)
        self.stats["reads"] += 1
        self.fault, self.failures = None, 0
        # A channel whose feedback disagrees with what it holds counts as unknown, so the next
        # write re-drives it: an ECHONET switch that rebooted reads its power-on state in 0x80
        # while its driver still holds the last write.
        self.switch_held = {sw.channel: sw.commanded_on if sw.feedback_on in (None, sw.commanded_on) else None
                            for sw in reading.switches}
        return reading

    async def write_switches(self, commands: list[SwitchCommand], now_s: float) -> int:
        """Write the switch channels whose held state differs from the command (a board that
        reset is re-driven at once; a channel whose feedback disagrees with it too) and, every
        :func:`switch_rewrite_s`, all of them.

        Returns how many channels were written (0 when the device is down or not a switch).
        """
        if not self.connected or self.fault is not None or not commands or not self.can(SwitchesLoads):
            return 0
        due = self.switches_written_s is None or now_s - self.switches_written_s >= switch_rewrite_s(
            self.site, self.config)
        todo = {c.channel: c.on for c in commands if due or self.switch_held.get(c.channel) != c.on}
        if not todo:
            return 0
        if await self._guard(_write_switches(self.driver, todo), now_s, "switch write") is None:
            return 0
        self.switch_held.update(todo)
        if due:
            self.switches_written_s = now_s
        self.stats["writes"] += len(todo)
        return len(todo)

    async def write(self, setpoints: list[Setpoint], revert_s: float, heartbeat: bool,
                    now_s: float) -> int:
        """Write clamped setpoints and a heartbeat; returns how many writes succeeded."""
        if not self.connected or self.fault is not None:
            return 0
        done = 0
        for sp in setpoints:
            value = clamp_setpoint(self.config, sp)
            if await self._guard(self._write_one(sp, value, revert_s), now_s, "write") is None:
                return done
            self.last_written[(sp.kind, sp.leg_id)] = value
            done += 1
        if heartbeat and self.heartbeat_ok and self.can(WritesHeartbeat):
            if not await self._heartbeat(now_s):
                return done
        self.stats["writes"] += done
        return done

    @property
    def operation_timeout_s(self) -> float:
        """Backstop deadline of one read, write or heartbeat: every request its full timeout [s]."""
        return self.timeout_s * REQUESTS_PER_OPERATION

    def can(self, capability: Any) -> bool:
        """``isinstance(driver, capability)``, cached: protocol checks are slow (~20 us each)."""
        known = self._caps.get(capability)
        if known is None:
            known = self._caps[capability] = isinstance(self.driver, capability)
        return known

    async def _heartbeat(self, now_s: float) -> bool:
        """Send a heartbeat; a device that has no heartbeat point just gets none from now on."""
        try:
            async with asyncio.timeout(self.operation_timeout_s):
                await self.driver.write_heartbeat()
            return True
        except PermanentDeviceError as exc:
            self.heartbeat_ok = False
            log.warning("device takes no heartbeat device=%s detail=%s", self.device_id, exc.detail)
            return True
        except asyncio.CancelledError:
            raise
        except Exception:
            return await self._guard(self.driver.write_heartbeat(), now_s, "heartbeat") is not None

    async def release(self, revert_s: float) -> None:
        """Hand control back to the device's own safe behaviour (shutdown, no decision)."""
        if not self.connected:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.operation_timeout_s):
                await release_driver(self.driver, link_leg_ids(self.config), revert_s)

    async def close(self) -> None:
        if self._connecting is not None and not self._connecting.done() and \
                self._connecting is not asyncio.current_task():
            self._connecting.cancel()
        if self.driver is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.timeout_s):
                    await self.driver.close()
        self.connected = False

    async def _connect_in_background(self, now_s: float) -> None:
        if self.driver is None:
            self.driver = self.factory(self.site, self.device_id)
            self._caps = {}
        limit_s = max(CONNECT_TIMEOUT_S, self.timeout_s * CONNECT_REQUESTS)
        try:
            async with asyncio.timeout(limit_s):
                await self.driver.connect()
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            await self._fail(f"connect: timed out after {limit_s:g} s", now_s, False)
            return
        except PermanentDeviceError as exc:
            await self._fail(f"connect: {exc.detail}", now_s, True)
            return
        except Exception as exc:  # refused, TLS/certificate trouble, garbage: retried later
            await self._fail(f"connect: {type(exc).__name__}: {exc}", now_s, False)
            return
        self.connected = True
        log.debug("device session open device=%s", self.device_id)  # healthy: logged on first read

    async def _write_one(self, sp: Setpoint, value: float, revert_s: float) -> bool:
        d = self.driver
        if sp.kind is SetpointKind.BATTERY_KW and self.can(WritesBatteryPower):
            await d.write_battery_power_kw(value, revert_s)
        elif sp.kind is SetpointKind.PV_LIMIT_KW and self.can(WritesPvLimit):
            await d.write_pv_limit_kw(value, revert_s)
        elif sp.kind is SetpointKind.LEG_KW and self.can(WritesLegPower):
            await d.write_leg_power_kw(sp.leg_id, value)
        else:
            raise PermanentDeviceError(self.device_id, "not_implemented",
                                       f"driver cannot take a {sp.kind.value} setpoint")
        return True

    async def _guard(self, operation, now_s: float, what: str):
        """Run ``operation`` under the backstop deadline; every failure becomes this device's fault.

        A request that times out is reported by the driver (per-request timeout) as a transient
        error; the deadline here only ends an operation that hangs beyond all its requests.
        """
        limit_s = self.operation_timeout_s
        try:
            async with asyncio.timeout(limit_s):
                return await operation
        except TimeoutError:
            await self._fail(f"{what}: timed out after {limit_s:g} s "
                             f"({REQUESTS_PER_OPERATION} x {self.timeout_s:g} s)", now_s, False)
        except PermanentDeviceError as exc:
            await self._fail(f"{what}: {exc.detail}", now_s, True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # garbage, lost connections, driver bugs: the device faults
            await self._fail(f"{what}: {type(exc).__name__}: {exc}", now_s, False)
        return None

    async def _fail(self, fault: str, now_s: float, permanent: bool) -> None:
        if self.fault != fault:
            log.warning("device fault device=%s fault=%r", self.device_id, fault)
        self.fault = fault
        self.failures += 1
        self.stats["faults"] += 1
        delay_s = PERMANENT_RETRY_S if permanent else min(
            BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (self.failures - 1))
        self.retry_at_s = now_s + delay_s
        await self.close()
        if permanent or self.failures > 3:
            self.driver = None  # rebuild the driver: a stuck client object is not reused


async def _write_switches(driver: Any, states: Mapping[int, bool]) -> bool:
    """A relay board takes adjacent channels in one request; other switches one by one."""
    if isinstance(driver, ModbusRelayBoard):
        await driver.set_switches(states)
    else:
        for channel, on in states.items():
            await driver.set_switch(channel, on)
    return True


class Fleet:
    """All devices of the site.

    Parameters
    ----------
    site : SiteConfig
    factory : callable
        ``factory(site, device_id)`` returns an unconnected driver implementing the
        capability protocols of :mod:`drivers.capabilities`.
    """

    def __init__(self, site: SiteConfig, factory: DriverFactory) -> None:
        self.site = site
        self.handles: dict[str, DeviceHandle] = {}
        for node, device in site.all_devices():
            proto = device.protocol
            request_timeout_s = (proto.modbus or proto.opcua or proto.echonet).timeout_s
            self.handles[device.id] = DeviceHandle(
                device.id, node.id, device, factory, site, request_timeout_s)

    async def read_all(self, now_s: float) -> tuple[dict[str, DeviceReading | None], dict[str, str | None]]:
        """Read every device concurrently; readings and faults per device id."""
        ids = list(self.handles)
        results = await asyncio.gather(*(self.handles[i].read(now_s) for i in ids))
        readings = dict(zip(ids, results, strict=True))
        faults = {i: self.handles[i].fault for i in ids}
        return readings, faults

    async def write_all(self, by_device: Mapping[str, list[Setpoint]], revert_s: float,
                        now_s: float) -> dict[str, int]:
        """Write each healthy device's setpoints (and heartbeat) concurrently."""
        ids = [i for i, h in self.handles.items() if h.connected and h.fault is None]
        counts = await asyncio.gather(*(self.handles[i].write(list(by_device.get(i, ())), revert_s,
                                                              True, now_s) for i in ids))
        return dict(zip(ids, counts, strict=True))

    async def write_switches(self, by_device: Mapping[str, list[SwitchCommand]], now_s: float) -> dict[str, int]:
        """Write each healthy switch device's commands concurrently; channels written per device."""
        ids = [i for i in by_device if i in self.handles]
        counts = await asyncio.gather(*(self.handles[i].write_switches(list(by_device[i]), now_s) for i in ids))
        return dict(zip(ids, counts, strict=True))

    async def release_all(self, revert_s: float) -> None:
        await asyncio.gather(*(h.release(revert_s) for h in self.handles.values()))

    async def close(self) -> None:
        await asyncio.gather(*(h.close() for h in self.handles.values()))

    def health(self) -> dict[str, str | None]:
        """Fault per device id (None when healthy)."""
        return {i: h.fault for i, h in self.handles.items()}

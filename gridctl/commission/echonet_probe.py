"""``gridctl commission probe`` for ECHONET Lite devices and load switches (relay boards too).

An ECHONET Lite device passes when its node answers, its object (class and instance from the
configuration) is in the node's instance list (0xD6), the EPCs its driver reads and writes are
in the object's property maps (0x9F get, 0x9E set), and two reads give plausible values and
monotonic counters. ECHONET Lite has no revert timer: the fail-safe check says what protects
the device instead. With ``--active`` a switch channel is switched off and on again, each
step confirmed by its feedback, and left as it was found.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from drivers.echonet.frame import NODE_PROFILE
from drivers.echonet.knowledge import decode_instance_list
from drivers.errors import DeviceError
from gridctl.commission.checks import FAIL, PASS, SKIP, WARN
from gridctl.commission.switch_probe import check_switch_reading

if TYPE_CHECKING:
    from gridctl.commission.probe import _Probe
    from drivers.echonet.devices import EchonetDevice

#: EPCs the drivers read (get map 0x9F) and write (set map 0x9E), by device kind.
_NEEDS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "pv_inverter": ((0x80, 0xE0, 0xE1), (0xA1,)),
    "battery": ((0x80, 0xD3, 0xE4, 0xDA), (0xDA, 0xEB, 0xEC)),
    "meter": ((0x80, 0xE7, 0xE0, 0xE3, 0xD3, 0xE1), ()),
    "switch": ((0x80,), (0x80,)),
}


def _hex(epcs: list[int]) -> str:
    return ", ".join(f"0x{e:02X}" for e in epcs)


def needed_epcs(kind: str, quirks: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:  # noqa: ANN401
    """(get, set) EPCs the driver of a ``kind`` device needs, with its quirks."""
    get, set_ = _NEEDS[kind]
    if kind == "meter" and quirks.fixed_counters:
        get += (0xEA, 0xEB)
    if kind == "pv_inverter" and quirks.pv_limit == "percent":
        get, set_ = get + (0xE8,), (0xA0,)
    return get, set_


async def probe_echonet(p: _Probe, driver: EchonetDevice, values: Callable[[_Probe, Any], None]) -> None:
    """Every check of one connected ECHONET Lite device (``values`` checks a reading)."""
    from gridctl.commission.probe import _check_counters, _identity

    await _identity(p, driver)
    await _check_instance(p, driver)
    _check_epcs(p, driver)
    if p.binding.kind == "switch":
        await check_switch_reading(p, driver)
        return
    first = await driver.read_snapshot()
    await asyncio.sleep(p.options.reread_after_s)
    second = await driver.read_snapshot()
    p.reading = second
    values(p, second)
    _check_counters(p, first, second)
    if p.binding.kind == "meter":
        _check_fixed(p, second)
    _fail_safe(p, driver)


async def why_unreachable(driver: EchonetDevice, detail: str) -> str:
    """A connect failure in one line: a node that answers but lacks the object says so (an
    ECHONET Lite node ignores requests to objects it does not have)."""
    ep = driver.endpoint
    if driver.client is None:  # not even a socket: the connect error says why
        return detail
    try:
        got = await driver.client.get(ep.host, ep.port, NODE_PROFILE, (0xD6,), timeout_s=ep.timeout_s, retries=0)
    except DeviceError:
        return f"no answer from the node at {ep.host}:{ep.port} (node off, wrong address or port, UDP blocked?)"
    listed = decode_instance_list(got.get(0xD6) or b"")
    if driver.eoj not in listed:
        return (f"the node at {ep.host}:{ep.port} has no object {driver.eoj}; it lists "
                f"{', '.join(str(e) for e in listed) or 'none'} (class or instance wrong?)")
    return detail


async def _check_instance(p: _Probe, driver: EchonetDevice) -> None:
    ep = driver.endpoint
    got = await driver.client.get(ep.host, ep.port, NODE_PROFILE, (0xD6,), timeout_s=ep.timeout_s)
    listed = decode_instance_list(got.get(0xD6) or b"")
    if driver.eoj in listed:
        p.add("object", PASS, f"object {driver.eoj} listed by the node at {ep.host}:{ep.port}")
    else:
        p.add("object", FAIL, f"no object {driver.eoj} at {ep.host}:{ep.port}; the node lists "
                              f"{', '.join(str(e) for e in listed) or 'none'} (class or instance wrong?)")


def _check_epcs(p: _Probe, driver: EchonetDevice) -> None:
    get, set_ = needed_epcs(p.binding.kind, driver.quirks)
    no_get = [e for e in get if e not in driver.get_map]
    no_set = [e for e in set_ if e not in driver.set_map]
    if no_get or no_set:
        parts = ([f"not readable (0x9F): {_hex(no_get)}"] if no_get else []) + \
                ([f"not settable (0x9E): {_hex(no_set)}"] if no_set else [])
        p.add("epcs", FAIL, "; ".join(parts) + " (a quirk in the profile, or another product?)")
    else:
        p.add("epcs", PASS, f"get {_hex(list(get))}" + (f"; set {_hex(list(set_))}" if set_ else ""))


def _check_fixed(p: _Probe, reading: Any) -> None:  # noqa: ANN401 - DeviceReading
    fixed = reading.fixed_counters
    if fixed is None:
        p.add("fixed-counters", WARN, "no fixed 30-minute counters (0xEA/0xEB): settles from live counters")
    elif fixed.at_utc.minute % 30 or fixed.at_utc.second:
        p.add("fixed-counters", FAIL, f"fixed point {fixed.at_utc.isoformat()} is not on a :00/:30 boundary")
    else:
        p.add("fixed-counters", PASS, f"at {fixed.at_utc.isoformat()}: forward {fixed.supplied_kwh} kWh, "
                                      f"reverse {fixed.absorbed_kwh} kWh")


def _fail_safe(p: _Probe, driver: EchonetDevice) -> None:
    kind = p.binding.kind
    if kind == "battery":
        p.add("fail-safe", WARN, "ECHONET Lite has no revert timer: the daemon re-writes every cycle and "
                                 f"releases the battery to {driver.quirks.battery_release_mode} mode")
    elif kind == "pv_inverter":
        p.add("fail-safe", WARN, "ECHONET Lite has no revert timer: the daemon re-writes the PV limit every "
                                 "cycle and lifts it on release")
    else:
        p.add("fail-safe", SKIP, "meters take no setpoints")

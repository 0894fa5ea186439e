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

from drivers.capabilities import SwitchState
from drivers.echonet.frame import NODE_PROFILE
from drivers.echonet.knowledge import decode_instance_list
from drivers.errors import DeviceError
from gridctl.commission.checks import FAIL, PASS, SKIP, WARN

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
        await _check_switch_reading(p, driver)
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


# -- switches (ECHONET Lite objects and relay boards) -------------------------------------
def _state_text(states: tuple[SwitchState, ...]) -> str:
    word = {True: "on", False: "off", None: "?"}
    return ", ".join(f"ch{s.channel} {word[s.commanded_on]}/{word[s.feedback_on]}" for s in states)


async def _check_switch_reading(p: _Probe, driver: Any) -> tuple[SwitchState, ...]:  # noqa: ANN401
    states = await driver.read_switches()
    odd = [s.channel for s in states if None not in (s.commanded_on, s.feedback_on)
           and s.commanded_on != s.feedback_on]
    if not states:
        p.add("switches", FAIL, "no switch channel read")
    elif odd:
        p.add("switches", FAIL, f"feedback disagrees with the command on channel(s) {odd}: {_state_text(states)}")
    else:
        p.add("switches", PASS, f"commanded/feedback: {_state_text(states)}")
    if not p.options.active:
        p.add("active", SKIP, "not toggled (use --active)")
    return states


async def probe_relay_board(p: _Probe, driver: Any) -> None:  # noqa: ANN401 - ModbusRelayBoard
    """Checks of a connected relay board: identity, channel states, the comm-loss watchdog."""
    from gridctl.commission.probe import _identity

    await _identity(p, driver)
    await _check_switch_reading(p, driver)
    relay = p.binding.profile.relay if p.binding.profile is not None else None
    if relay is not None and relay.watchdog_register is not None and relay.watchdog_timeout_s:
        p.add("fail-safe", PASS, f"comm-loss watchdog armed at {relay.watchdog_timeout_s:g} s "
                                 f"(outputs to their power-on state, {'energised' if relay.power_on_energised else 'released'})")
    else:
        p.add("fail-safe", WARN, "no comm-loss watchdog: outputs hold their last state if gridctl stops")


async def _settled(driver: Any, channel: int, hold_s: float) -> SwitchState | None:  # noqa: ANN401
    await asyncio.sleep(hold_s)
    return next((s for s in await driver.read_switches() if s.channel == channel), None)


async def _toggle(driver: Any, channel: int, start_on: bool, hold_s: float) -> list[str]:  # noqa: ANN401
    """Switch ``channel`` away from ``start_on`` and back, each step checked by its feedback."""
    problems = []
    for on in (not start_on, start_on):
        await driver.set_switch(channel, on)
        seen = await _settled(driver, channel, hold_s)
        if seen is None or seen.feedback_on is None:
            problems.append(f"channel {channel}: switched {'on' if on else 'off'}, no feedback to confirm it")
        elif seen.feedback_on != on:
            problems.append(f"channel {channel}: switched {'on' if on else 'off'}, feedback still "
                            f"{'on' if seen.feedback_on else 'off'}")
    return problems


async def active_switch_test(p: _Probe, driver: Any) -> None:  # noqa: ANN401 - a SwitchesLoads driver
    """Toggle every channel off and on (or on and off) and back; the state found is restored."""
    found = await driver.read_switches()
    problems: list[str] = []
    for state in found:
        start_on = state.feedback_on if state.feedback_on is not None else state.commanded_on
        if start_on is None:
            problems.append(f"channel {state.channel}: state unknown, not toggled")
            continue
        try:
            problems += await _toggle(driver, state.channel, start_on, p.options.active_hold_s)
        finally:
            await driver.set_switch(state.channel, start_on)  # as found, whatever happened
    if problems:
        p.add("active", FAIL, "; ".join(problems))
    else:
        p.add("active", PASS, f"{len(found)} channel(s) toggled and confirmed by feedback, left as found "
                              f"({_state_text(tuple(found))})")

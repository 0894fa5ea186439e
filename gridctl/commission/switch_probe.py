"""``gridctl commission probe`` for load switches: relay boards and ECHONET Lite switch objects.

Passively, every channel's feedback must agree with its command; a relay board's comm-loss
watchdog is reported as its fail-safe. With ``--active`` each channel is switched away from
the state found and back, each step confirmed by its feedback, and left as it was found
whatever happens.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from drivers.capabilities import SwitchState
from gridctl.commission.checks import FAIL, PASS, SKIP, WARN

if TYPE_CHECKING:
    from gridctl.commission.probe import _Probe


# -- switches (ECHONET Lite objects and relay boards) -------------------------------------
def _state_text(states: tuple[SwitchState, ...]) -> str:
    word = {True: "on", False: "off", None: "?"}
    return ", ".join(f"ch{s.channel} {word[s.commanded_on]}/{word[s.feedback_on]}" for s in states)


async def check_switch_reading(p: _Probe, driver: Any) -> tuple[SwitchState, ...]:  # noqa: ANN401
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
    await check_switch_reading(p, driver)
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

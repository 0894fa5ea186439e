"""Commissioning checks of a load switch (relay board, ECHONET Lite switch object).

Passive: every channel's commanded state (coil) agrees with its feedback (contactor). With
``--active``: each channel is switched off, checked through its feedback, and switched back on
(this disconnects the circuit for a moment: a test for commissioning, not for a live block).
"""

from __future__ import annotations

import asyncio

from drivers.capabilities import SwitchesLoads, SwitchState
from gridctl.commission.checks import FAIL, PASS, SKIP, WARN


def _word(on: bool | None) -> str:
    return "unknown" if on is None else ("on" if on else "off")


def passive_check(states: tuple[SwitchState, ...]) -> tuple[str, str]:
    """(status, detail) of a read of every channel: feedback agrees with the command."""
    if not states:
        return FAIL, "the device reports no channels"
    disagree = [s for s in states if s.feedback_on is not None and s.feedback_on != s.commanded_on]
    if disagree:
        s = disagree[0]
        return FAIL, (f"channel {s.channel} commanded {_word(s.commanded_on)} but its feedback reads "
                      f"{_word(s.feedback_on)} (contactor wiring or feedback input?)")
    no_feedback = [s.channel for s in states if s.feedback_on is None]
    text = ", ".join(f"{s.channel}:{_word(s.commanded_on)}" for s in states)
    if no_feedback:
        return WARN, f"channels {text}; no feedback on {no_feedback} (shedding cannot be verified)"
    return PASS, f"channels {text}; feedback agrees"


async def _state(driver: SwitchesLoads, channel: int) -> SwitchState | None:
    return next((s for s in await driver.read_switches() if s.channel == channel), None)


async def toggle_check(driver: SwitchesLoads, channel: int, settle_s: float) -> tuple[str, str]:
    """Switch ``channel`` off and on again, checking feedback each time."""
    seen = []
    for on in (False, True):
        await driver.set_switch(channel, on)
        await asyncio.sleep(settle_s)
        state = await _state(driver, channel)
        if state is None:
            return FAIL, f"channel {channel} vanished from the device's reading"
        if state.commanded_on != on:
            return FAIL, f"channel {channel} commanded {_word(on)} but holds {_word(state.commanded_on)}"
        if state.feedback_on is not None and state.feedback_on != on:
            return FAIL, f"channel {channel} switched {_word(on)} but its feedback reads {_word(state.feedback_on)}"
        seen.append(state.feedback_on is not None)
    return (PASS, f"channel {channel} off and on again, confirmed by feedback") if all(seen) else \
        (WARN, f"channel {channel} off and on again (no feedback to confirm)")


async def probe_switches(add, driver: SwitchesLoads, active: bool, settle_s: float) -> None:  # noqa: ANN001
    """Run the checks; ``add(check, status, detail)`` records each."""
    states = await driver.read_switches()
    add("switches", *passive_check(states))
    if not active:
        add("active", SKIP, "not run (use --active: switches each channel off and on)")
        return
    for state in states:
        add(f"switch {state.channel}", *await toggle_check(driver, state.channel, settle_s))

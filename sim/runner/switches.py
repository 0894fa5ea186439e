"""Simulated load switches: one contactor per switched channel, following its command.

A site with ``load.switches`` sheds a node's sheddable share only through them: the share
shed in a step is the share of the node's channels whose contactor is open. Fault knobs per
channel (:class:`SwitchFault`): a stuck contactor, one that follows late, and a board reset
at a given time (its command returns to connected, as a relay board's outputs do).

A site without any ``load.switches`` keeps the idealised shedding (a shed tier is shed at
once, in full); the run summary says so ("shedding not actuated").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gridctl.config import SiteConfig
from gridctl.controller.switches import ChannelId, SwitchCommand, SwitchReading, shedding_actuated

__all__ = ["SimSwitches", "SwitchFault", "shedding_actuated"]


@dataclass(frozen=True)
class SwitchFault:
    """Fault of one simulated channel.

    Attributes
    ----------
    stuck : bool
        The contactor never moves (its feedback keeps its state).
    delay_s : float
        The contactor follows its command this long after it changed [s].
    reset_at_utc : datetime or None
        The board resets at this time: the channel's command returns to connected (once).
    """

    stuck: bool = False
    delay_s: float = 0.0
    reset_at_utc: dt.datetime | None = None


@dataclass
class _Channel:
    commanded_on: bool = True
    contactor_on: bool = True
    changed_utc: dt.datetime | None = None
    reset_done: bool = False


#: A channel without a fault.
_NO_FAULT = SwitchFault()


class SimSwitches:
    """Every switched channel of a site, with its contactor."""

    def __init__(self, site: SiteConfig, faults: Mapping[ChannelId, SwitchFault] | None = None) -> None:
        self.node_channels: dict[str, tuple[ChannelId, ...]] = {
            node.id: tuple((s.device, s.channel) for s in node.load.switches) for node in site.nodes}
        self.faults = dict(faults or {})
        self.channels = {key: _Channel() for keys in self.node_channels.values() for key in keys}

    def _settle(self, now: dt.datetime) -> None:
        for key, ch in self.channels.items():
            fault = self.faults.get(key, _NO_FAULT)
            if fault.reset_at_utc is not None and not ch.reset_done and now >= fault.reset_at_utc:
                ch.reset_done, ch.commanded_on, ch.changed_utc = True, True, now
            if fault.stuck or ch.contactor_on == ch.commanded_on:
                continue
            if ch.changed_utc is None or (now - ch.changed_utc).total_seconds() >= fault.delay_s:
                ch.contactor_on = ch.commanded_on

    def readings(self, now: dt.datetime) -> dict[str, tuple[SwitchReading, ...]]:
        """What each switch device reports at ``now``."""
        self._settle(now)
        out: dict[str, list[SwitchReading]] = {}
        for (device_id, channel), ch in self.channels.items():
            out.setdefault(device_id, []).append(SwitchReading(channel, ch.commanded_on, ch.contactor_on))
        return {device_id: tuple(readings) for device_id, readings in out.items()}

    def apply(self, commands: Iterable[SwitchCommand], now: dt.datetime) -> None:
        """Take the cycle's commands; contactors follow (at once unless delayed or stuck)."""
        for command in commands:
            ch = self.channels.get((command.device_id, command.channel))
            if ch is not None and ch.commanded_on != command.on:
                ch.commanded_on, ch.changed_utc = command.on, now
        self._settle(now)

    def open_share(self, node_id: str) -> float:
        """Share of the node's switched channels whose contactor is open [0..1]."""
        keys = self.node_channels.get(node_id, ())
        if not keys:
            return 0.0
        return sum(not self.channels[key].contactor_on for key in keys) / len(keys)

"""Values of load switching: what a switch reports, what the controller commands, what it keeps.

A *switched channel* is one ``(device_id, channel)`` of a relay board or ECHONET Lite switch
named in a node's ``load.switches``; ``on`` means the circuit is connected (served).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

__all__ = ["ChannelId", "ShedState", "SwitchCommand", "SwitchReading", "shedding_actuated"]

#: ``(device_id, channel)`` of one switched channel.
ChannelId = tuple[str, int]


def shedding_actuated(site) -> bool:  # noqa: ANN001 - a SiteConfig (config is imported by callers)
    """True when some node sheds through switches (``load.switches``); a site without any keeps
    the idealised shedding tiers."""
    return any(node.load.switches for node in site.nodes)


@dataclass(frozen=True)
class SwitchReading:
    """One channel as its device reported it this cycle.

    Attributes
    ----------
    channel : int
    commanded_on : bool or None
        What the device holds as commanded (a rebooted board shows its power-on state).
    feedback_on : bool or None
        What the device measures (contactor feedback); None without feedback.
    """

    channel: int
    commanded_on: bool | None
    feedback_on: bool | None

    @property
    def effective_on(self) -> bool | None:
        """The circuit's state as best known: feedback, else the commanded state."""
        return self.feedback_on if self.feedback_on is not None else self.commanded_on


@dataclass(frozen=True)
class SwitchCommand:
    """Connect (``on``) or disconnect one switched channel."""

    device_id: str
    channel: int
    on: bool


@dataclass(frozen=True, eq=False)
class ShedState:
    """What the switch state machine remembers (:mod:`gridctl.controller.shedding`).

    Attributes
    ----------
    off_tiers : tuple of int
        Configured tiers whose switches are commanded off, in the order they were shed.
    forced_tiers : tuple of int
        Those of ``off_tiers`` shed because a switch of an earlier tier did not obey.
    commanded : Mapping[ChannelId, bool]
        The last command of every switched channel (True: connected).
    waiting : Mapping[ChannelId, int]
        Cycles each channel has shown another state than commanded.
    failed : frozenset of ChannelId
        Channels that did not obey within ``islanding.switch_confirm_cycles``.
    unconfirmed : frozenset of ChannelId
        Channels whose last command is not yet confirmed by a reading (commanded this cycle,
        or still waiting), failed ones excepted: the tie does not close while there are any.
    tie_open : bool
        The grid tie was open in the last cycle.
    last_step_utc : datetime or None
        When a tier was last shed or restored, or the tie last closed.
    at_utc : datetime or None
        The cycle this state was made in.
    prior : ShedState or None
        The state before that cycle (a cycle that runs the controller twice starts again
        from it, so a cycle counts once).
    """

    off_tiers: tuple[int, ...] = ()
    forced_tiers: tuple[int, ...] = ()
    commanded: Mapping[ChannelId, bool] = field(default_factory=dict)
    waiting: Mapping[ChannelId, int] = field(default_factory=dict)
    failed: frozenset[ChannelId] = frozenset()
    unconfirmed: frozenset[ChannelId] = frozenset()
    tie_open: bool = False
    last_step_utc: dt.datetime | None = None
    at_utc: dt.datetime | None = None
    prior: ShedState | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "commanded", MappingProxyType(dict(self.commanded)))
        object.__setattr__(self, "waiting", MappingProxyType(dict(self.waiting)))
        object.__setattr__(self, "failed", frozenset(self.failed))
        object.__setattr__(self, "unconfirmed", frozenset(self.unconfirmed))

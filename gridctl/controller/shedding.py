"""The load-switch state machine: the decision's shed tiers, actuated through switches.

Run by :func:`gridctl.controller.loop.step` every cycle, after the decision, for the nodes
that have ``load.switches`` (a node without switches is never touched). Pure: readings,
decision, state and time in; switch commands, state and notes out.

Rules, per cycle:

1. *Verify*: every switched channel's reading is compared with its last command. A device that
   holds another state than commanded (a board that rebooted or whose watchdog fired resets
   its outputs) is re-driven in this very cycle and noted. A channel whose feedback differs from
   its command for ``islanding.switch_confirm_cycles`` cycles has *failed*; a switch device
   without a reading keeps its last commands and is reported.
2. *Shed* (only while the grid tie is open): the tiers the decision sheds at nodes with
   switches, in ``islanding.shed_order``, one tier per cycle and only once every channel of the
   tiers already off confirmed (or failed). A channel of a shed tier that failed raises the next
   tier at once, planned or not: the load behind it still draws.
3. *Restore*: tiers no longer wanted come back in reverse shed order, one tier per
   ``islanding.restore_step_delay_s`` (counted from the last step), each confirmed before the
   next. While reconnecting, every tier is restored ahead of the moment the tie may close
   (one delay per tier before it), still islanded: the mode machine closes the tie only once
   no tier is switched off, so load is never shed while the grid is up (the restore is the
   cold-load pickup of the island, not of the grid). Tiers found off with the tie closed
   (a restart) come back the same way, counted from the tie closing.

At a fresh start (no commands yet) the switches are taken as found: a tier with a channel that
reads disconnected counts as shed and is restored by rule 3, never all at once.

Every switched channel gets a command every cycle (the re-write keeps relay watchdogs fed).
Tiers are the unit of a step: a tier is shed at every switched node of that tier.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from gridctl.config import SiteConfig
from gridctl.controller.switches import ChannelId, ShedState, SwitchCommand, SwitchReading
from gridctl.controller.types import Setpoints, Snapshot

__all__ = ["ShedResult", "advance", "demand_snapshot", "switched_tiers"]


@dataclass(frozen=True, eq=False)
class ShedResult:
    """One cycle of the switch state machine: the state to keep, commands and notes."""

    state: ShedState
    commands: tuple[SwitchCommand, ...] = ()
    notes: tuple[str, ...] = ()


def switched_tiers(site: SiteConfig) -> dict[int, tuple[ChannelId, ...]]:
    """The switched channels of each configured tier (nodes with ``load.switches`` only)."""
    tiers: dict[int, tuple[ChannelId, ...]] = {}
    for node in site.nodes:
        channels = tuple((s.device, s.channel) for s in node.load.switches)
        if channels:
            tiers[node.load.shed_tier] = tiers.get(node.load.shed_tier, ()) + channels
    return tiers


@dataclass(frozen=True)
class _Observed:
    waiting: dict[ChannelId, int]
    failed: frozenset[ChannelId]
    newly_failed: tuple[ChannelId, ...]
    dead_devices: frozenset[str]
    notes: tuple[str, ...]


def _word(on: bool | None) -> str:
    return "on" if on else "off"


def _reading(snapshot: Snapshot, device_id: str, channel: int) -> SwitchReading | None:
    if not snapshot.device_ok(device_id):
        return None
    return next((r for r in snapshot.switches.get(device_id, ()) if r.channel == channel), None)


def _observe(site: SiteConfig, base: ShedState, channels: tuple[ChannelId, ...],
             snapshot: Snapshot) -> _Observed:
    """Step 1: compare every commanded channel's reading with its command."""
    limit = site.islanding.switch_confirm_cycles
    waiting: dict[ChannelId, int] = {}
    failed, newly, dead, notes = set(base.failed), [], set(), []
    for key in channels:
        command = base.commanded.get(key)
        if command is None:
            continue
        device_id, channel = key
        reading = _reading(snapshot, device_id, channel)
        if reading is None:
            dead.add(device_id)
            if command:  # a connected circuit cannot draw more than planned: nothing to verify
                continue
            seen = None
        elif reading.commanded_on is not None and reading.commanded_on != command:
            notes.append(f"switch {device_id} channel {channel}: holds {_word(reading.commanded_on)}, "
                         f"not the commanded {_word(command)} (device reset?); re-driven")
            continue
        else:
            seen = reading.effective_on
        if seen == command:
            if key in failed:
                failed.discard(key)
                notes.append(f"switch {device_id} channel {channel}: obeys again ({_word(command)})")
            continue
        waiting[key] = base.waiting.get(key, 0) + 1
        if waiting[key] >= limit and key not in failed:
            failed.add(key)
            newly.append(key)
            notes.append(f"switch {device_id} channel {channel}: commanded {_word(command)}, still "
                         f"{'unread' if seen is None else _word(seen)} after {waiting[key]} cycles: fault")
    for device_id in sorted(dead):
        notes.append(f"switch device {device_id}: no reading; its channels keep their last command")
    return _Observed(waiting, frozenset(failed), tuple(newly), frozenset(dead), tuple(notes))


def _wanted(site: SiteConfig, setpoints: Setpoints) -> set[int]:
    """The switched tiers the decision sheds."""
    return {node.load.shed_tier for node in site.nodes
            if node.load.switches and node.load.shed_tier in setpoints.shed_tiers.get(node.id, ())}


def _settled(obs: _Observed) -> bool:
    """Every commanded channel shows its command (or has failed): the last step is confirmed."""
    return obs.waiting.keys() <= obs.failed


def advance(site: SiteConfig, state: ShedState, setpoints: Setpoints, snapshot: Snapshot,
            now: dt.datetime, reconnect_at_utc: dt.datetime | None = None) -> ShedResult:
    """One cycle of the switch state machine (see the module text).

    ``reconnect_at_utc`` is when the tie may close (the grid healthy for the reconnect delay)
    while reconnecting, else None: the shed tiers are then restored ahead of it.
    """
    tiers = switched_tiers(site)
    if not tiers:
        return ShedResult(state)
    base = state.prior if state.at_utc == now and state.prior is not None else state
    if not base.commanded:
        base = _adopt_found(site, base, tiers, snapshot, now)
    channels = tuple(key for t in tiers.values() for key in t)
    obs = _observe(site, base, channels, snapshot)
    notes = list(obs.notes)
    tie_open = setpoints.grid_tie_open
    last_step = now if base.tie_open and not tie_open else base.last_step_utc
    order = [t.tier for t in site.islanding.shed_order if t.tier in tiers]
    off, forced = list(base.off_tiers), list(base.forced_tiers) if tie_open else []
    tier_of = {key: tier for tier, keys in tiers.items() for key in keys}
    disobeyed = sorted({tier_of[key] for key in obs.newly_failed if not base.commanded.get(key, True)})
    raised = tie_open and bool(disobeyed)
    if raised:
        nxt = next((t for t in order if t not in off), None)
        if nxt is None:
            notes.append(f"a switch of tier {disobeyed[0]} did not obey and no tier is left to shed")
        else:
            off.append(nxt)
            forced.append(nxt)
            last_step = now
            notes.append(f"tier {nxt} shed because a switch of tier {disobeyed[0]} did not obey")
    elif _settled(obs):
        wanted = (_wanted(site, setpoints) | set(forced)) if tie_open else set()
        if _restore_before_reconnect(site, len(tiers), now, reconnect_at_utc):
            wanted = set()
        to_shed = [t for t in order if t in wanted and t not in off]
        to_restore = [t for t in reversed(off) if t not in wanted]
        delay_s = site.islanding.restore_step_delay_s
        if to_shed and tie_open:
            off.append(to_shed[0])
            last_step = now
            notes.append(f"tier {to_shed[0]} shed through its switches")
        elif to_restore and (last_step is None or (now - last_step).total_seconds() >= delay_s):
            off.remove(to_restore[0])
            forced = [t for t in forced if t != to_restore[0]]
            last_step = now
            notes.append(f"tier {to_restore[0]} restored through its switches")
    commands, commanded = _commands(tiers, off, base, obs)
    waiting = {k: v for k, v in obs.waiting.items() if commanded.get(k) == base.commanded.get(k)}
    changed = {k for k, on in commanded.items() if base.commanded.get(k) != on}
    unconfirmed = (changed | set(waiting)) - set(obs.failed)
    new = ShedState(off_tiers=tuple(off), forced_tiers=tuple(forced), commanded=commanded,
                    waiting=waiting, failed=obs.failed, unconfirmed=frozenset(unconfirmed),
                    tie_open=tie_open, last_step_utc=last_step, at_utc=now,
                    prior=replace(base, prior=None))
    return ShedResult(new, commands, tuple(notes))


def _restore_before_reconnect(site: SiteConfig, n_tiers: int, now: dt.datetime,
                              reconnect_at_utc: dt.datetime | None) -> bool:
    """True once the shed tiers must come back so that the last is restored when the tie may
    close: one ``restore_step_delay_s`` per switched tier ahead of ``reconnect_at_utc`` (the
    number of tiers, not of those still off, so that the window never moves back)."""
    if reconnect_at_utc is None:
        return False
    lead = dt.timedelta(seconds=n_tiers * site.islanding.restore_step_delay_s)
    return now >= reconnect_at_utc - lead


def _adopt_found(site: SiteConfig, base: ShedState, tiers: dict[int, tuple[ChannelId, ...]],
                 snapshot: Snapshot, now: dt.datetime) -> ShedState:
    """A state without commands (a fresh start) takes the switches as it finds them.

    A daemon restarted mid-outage must not connect every shed circuit at once onto batteries
    that could not carry them: a tier any of whose channels reads disconnected counts as shed
    (in shed order) and comes back only by the restore rule, one step at a time. Channels that
    cannot be read are commanded as their tier is.
    """
    off, commanded = [], {}
    for tier in (t.tier for t in site.islanding.shed_order if t.tier in tiers):
        seen = {key: _reading(snapshot, *key) for key in tiers[tier]}
        if any(r is not None and r.effective_on is False for r in seen.values()):
            off.append(tier)
        for key, reading in seen.items():
            if reading is not None and reading.effective_on is not None:
                commanded[key] = reading.effective_on
    if not off:
        return base
    return replace(base, off_tiers=tuple(off), commanded=commanded, last_step_utc=now)


def demand_snapshot(site: SiteConfig, state: ShedState, snapshot: Snapshot) -> Snapshot:
    """``snapshot`` with each switched node's load as its demand, shed circuits included.

    A node's load reading (its router's node leg, or its meter balance) sees only the circuits
    still connected. Decisions need the demand: taken as served, a shed node would look able
    to carry its load, its tier would be restored and shed again, cycle after cycle. The
    sheddable share ``1 - critical_share_pct`` is spread evenly over the node's channels, so
    with a fraction ``f`` of them disconnected the demand is ``served / (1 - share * f)``.
    A channel without a reading counts as last commanded. Sites without switches, and nodes
    with every channel connected, are returned unchanged.
    """
    nodes = dict(snapshot.nodes)
    changed = False
    for node in site.nodes:
        channels = node.load.switches
        reading = nodes.get(node.id)
        if not channels or reading is None or reading.load_kw is None:
            continue
        off = 0
        for sw in channels:
            r = _reading(snapshot, sw.device, sw.channel)
            on = r.effective_on if r is not None and r.effective_on is not None \
                else state.commanded.get((sw.device, sw.channel), True)
            off += not on
        if off:
            share = (1.0 - node.load.critical_share_pct / 100.0) * off / len(channels)
            nodes[node.id] = replace(reading, load_kw=reading.load_kw / max(1.0 - share, 1e-6))
            changed = True
    if not changed:
        return snapshot
    return replace(snapshot, nodes=nodes)


def _commands(tiers: dict[int, tuple[ChannelId, ...]], off: list[int], base: ShedState,
              obs: _Observed) -> tuple[tuple[SwitchCommand, ...], dict[ChannelId, bool]]:
    """A command for every switched channel; a dead device's channels keep their last one."""
    commanded: dict[ChannelId, bool] = {}
    for tier, keys in tiers.items():
        for key in keys:
            on = tier not in off
            if key[0] in obs.dead_devices and key in base.commanded:
                on = base.commanded[key]
            commanded[key] = on
    commands = tuple(SwitchCommand(device_id, channel, on) for (device_id, channel), on in commanded.items())
    return commands, commanded

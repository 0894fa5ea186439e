"""Recording: cumulative counters at each 30-minute JST boundary, closed periods to settlement.

A period's energy is the difference of cumulative counters at its start and end boundary, so
a missed poll loses nothing. The counter value at a boundary is the first sample of each
channel at or after the boundary, accepted within the grace time; a channel not seen by then
is missing for both neighbouring periods (the settlement reports it, it is never guessed).
For a grid meter that keeps fixed 30-minute counters (a Japanese smart meter), the value at a
boundary is instead the meter's fixed-point value stamped with exactly that boundary, taken
whenever it arrives until the boundary has been used by a settled period; the recorder waits
for it up to the grace time, then falls back to the live rule for that boundary and marks it
(:class:`~gridctl.settlement.model.CounterSource`), which the settlement flags.
A closed period is handed to the settlement once every channel has its end value or the grace
time has passed; each period is handed over exactly once, in order, also across restarts (the
recorder's state is persisted after every change, and the sink is asked whether it already
holds the period). A wall clock stepping back never reopens a period.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from gridctl.daemon.stages.snapshot import CounterSample
from gridctl.settlement.model import ChannelReading, CounterSource, PeriodReadings, counter_kwh
from gridctl.tariffs import settlement_period

log = logging.getLogger(__name__)

PERIOD = timedelta(minutes=30)
#: At most this many closed periods are settled in one cycle (a long outage catches up).
MAX_SETTLEMENTS_PER_CYCLE = 8


class PeriodSink(Protocol):
    """Where closed periods go: the settlement into the ledger and its outbox."""

    def is_settled(self, start_utc: datetime) -> bool:
        """True when the ledger already holds the period starting at ``start_utc``."""

    def settle(self, readings: PeriodReadings) -> None:
        """Settle the period and commit it (ledger entry + outbox) or raise."""


def _key(member_id: str, channel: str) -> str:
    return f"{member_id}|{channel}"


def _dec(value: float | None) -> Decimal | None:
    return counter_kwh(value)


Pair = list[float | None]


@dataclass
class RecorderState:
    """The persisted part of the recorder (JSON).

    ``boundaries`` holds the first live sample per channel key at each boundary (ISO time);
    ``fixed`` the fixed-point values received for a boundary; ``sources`` the source chosen
    for each fixed-point channel once a settled period has used the boundary (then final).
    """

    open_start: datetime | None = None
    boundaries: dict[str, dict[str, Pair]] = field(default_factory=dict)
    pending: list[datetime] = field(default_factory=list)
    last_settled: datetime | None = None
    fixed: dict[str, dict[str, Pair]] = field(default_factory=dict)
    sources: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({
            "open_start": self.open_start.isoformat() if self.open_start else None,
            "boundaries": self.boundaries,
            "pending": [p.isoformat() for p in self.pending],
            "last_settled": self.last_settled.isoformat() if self.last_settled else None,
            "fixed": self.fixed,
            "sources": self.sources,
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> RecorderState:
        data = json.loads(text)

        def t(v: str | None) -> datetime | None:
            return None if v is None else datetime.fromisoformat(v)

        return cls(t(data["open_start"]), data["boundaries"],
                   [datetime.fromisoformat(p) for p in data["pending"]], t(data["last_settled"]),
                   fixed=data.get("fixed", {}), sources=data.get("sources", {}))


class Recorder:
    """Tracks period boundaries and settles closed periods through a :class:`PeriodSink`.

    Parameters
    ----------
    channels : list of (member_id, channel)
        Every channel a period must contain
        (:func:`gridctl.daemon.stages.snapshot.expected_channels`).
    grace_s : float
        How long after a boundary a first sample is accepted, and how long a closed period
        waits for late counters before it is settled anyway [s].
    sink : PeriodSink
    state : RecorderState or None
        Restored state (after a restart).
    optional_channels : list of (member_id, channel)
        Channels recorded with each period (missing ones as None) but never waited for: the
        PV counters (:func:`gridctl.daemon.stages.snapshot.pv_channels`), which settlement
        does not use.
    fixed_channels : list of (member_id, channel)
        Channels whose meter keeps fixed 30-minute counters
        (:func:`gridctl.settlement.timing.fixed_point_channels`): their boundary values come from
        the samples with ``fixed_at_utc`` equal to the boundary.
    """

    def __init__(self, channels: list[tuple[str, str]], grace_s: float, sink: PeriodSink,
                 state: RecorderState | None = None,
                 optional_channels: list[tuple[str, str]] | None = None,
                 fixed_channels: list[tuple[str, str]] | None = None) -> None:
        self.channels = channels
        self.optional_channels = list(optional_channels or [])
        self.fixed_keys = frozenset(_key(m, c) for m, c in fixed_channels or [])
        self.grace = timedelta(seconds=grace_s)
        self.sink = sink
        self.state = state or RecorderState()
        self.dirty = False
        self.clock_back_logged = False
        self.last_error: str | None = None

    def observe(self, now: datetime, samples: list[CounterSample]) -> None:
        """Feed one poll's counters at wall time ``now`` (UTC)."""
        st = self.state
        start, _end = settlement_period(now)
        if st.open_start is None:
            st.open_start, self.dirty = start, True
        elif start > st.open_start:
            q = st.open_start
            while q < start:
                st.pending.append(q)
                q += PERIOD
            st.open_start, self.dirty = start, True
            self.clock_back_logged = False
        elif start < st.open_start and not self.clock_back_logged:
            log.warning("wall clock is behind the open period now=%s open_start=%s: "
                        "periods are not reopened", now.isoformat(), st.open_start.isoformat())
            self.clock_back_logged = True
        self._fill(now, samples)

    def _fill(self, now: datetime, samples: list[CounterSample]) -> None:
        """Take each channel's first sample at or after a boundary, within the grace time."""
        st = self.state
        boundaries = {p + PERIOD for p in st.pending} | ({st.open_start} if st.open_start else set())
        for boundary in boundaries:
            if not boundary <= now <= boundary + self.grace:
                continue
            row = st.boundaries.setdefault(boundary.isoformat(), {})
            for s in samples:
                if s.fixed_at_utc is None and s.key not in row:
                    row[s.key] = [s.import_kwh, s.export_kwh]
                    self.dirty = True
        self._fill_fixed(boundaries, samples)

    def _fill_fixed(self, boundaries: set[datetime], samples: list[CounterSample]) -> None:
        """Take fixed-point values for the boundary they are stamped with, whenever they come.

        A value is exact for its own boundary only: one stamped for any other time (the
        previous fixed point, a boundary already used by a settled period) is ignored.
        """
        st = self.state
        isos = {b: b.isoformat() for b in boundaries}  # aware datetimes compare across zones
        for s in samples:
            if s.fixed_at_utc is None or s.key not in self.fixed_keys:
                continue
            iso = isos.get(s.fixed_at_utc)
            if iso is None or s.key in st.sources.get(iso, {}):
                continue
            row = st.fixed.setdefault(iso, {})
            if s.key not in row:
                row[s.key] = [s.import_kwh, s.export_kwh]
                self.dirty = True

    def _arrived(self, iso: str, key: str) -> bool:
        """The boundary value of a channel is in (a fixed-point value for fixed channels)."""
        rows = self.state.fixed if key in self.fixed_keys else self.state.boundaries
        return key in rows.get(iso, {})

    def _boundary(self, iso: str, key: str) -> tuple[Pair, CounterSource | None]:
        """A channel's counters at a boundary and their source (None: a live sample)."""
        st = self.state
        live = st.boundaries.get(iso, {}).get(key, [None, None])
        if key not in self.fixed_keys:
            return live, None
        chosen = st.sources.get(iso, {}).get(key)
        if chosen is not None:
            return live, CounterSource(chosen)
        fixed = st.fixed.get(iso, {}).get(key)
        if fixed is not None:
            return fixed, CounterSource.FIXED_POINT
        return live, CounterSource.LIVE_FALLBACK

    def _freeze(self, iso: str) -> None:
        """Make the source of a boundary used by a settled period final, so that the next
        period starts from the very value this one ended with."""
        st = self.state
        for key in sorted(self.fixed_keys):
            value, source = self._boundary(iso, key)
            if source is CounterSource.FIXED_POINT:
                st.boundaries.setdefault(iso, {})[key] = value
            st.sources.setdefault(iso, {})[key] = source.value
        st.fixed.pop(iso, None)

    def settle_due(self, now: datetime) -> int:
        """Settle closed periods that are complete or past their grace time; returns how many."""
        st = self.state
        done = 0
        while st.pending and done < MAX_SETTLEMENTS_PER_CYCLE:
            start = st.pending[0]
            end = start + PERIOD
            complete = all(self._arrived(end.isoformat(), _key(m, c)) for m, c in self.channels)
            if not complete and now < end + self.grace:
                break
            if st.last_settled is None or start > st.last_settled:
                try:
                    if not self.sink.is_settled(start):
                        self.sink.settle(self.readings(start))
                        done += 1
                except Exception as exc:  # kept pending and retried next cycle; control goes on
                    error = f"period {start.isoformat()}: {type(exc).__name__}: {exc}"
                    if error != self.last_error:
                        log.error("settlement failed, will retry error=%s", error)
                    self.last_error = error
                    break
                self.last_error = None
                st.last_settled = start
            if self.fixed_keys:
                self._freeze(end.isoformat())
            st.pending.pop(0)
            for rows in (st.boundaries, st.fixed, st.sources):
                rows.pop(start.isoformat(), None)
            self.dirty = True
        return done

    def readings(self, start: datetime) -> PeriodReadings:
        """The counters of the period starting at ``start`` (missing ones as None)."""
        first, last = start.isoformat(), (start + PERIOD).isoformat()
        channels = []
        for member, channel in [*self.channels, *self.optional_channels]:
            a, a_source = self._boundary(first, _key(member, channel))
            b, b_source = self._boundary(last, _key(member, channel))
            channels.append(ChannelReading(member, channel, _dec(a[0]), _dec(a[1]),
                                           _dec(b[0]), _dec(b[1]), a_source, b_source))
        return PeriodReadings(start_utc=start.astimezone(UTC), channels=tuple(channels))

    def backlog(self) -> int:
        """Closed periods not yet settled."""
        return len(self.state.pending)

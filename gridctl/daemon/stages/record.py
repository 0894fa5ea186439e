"""Recording: cumulative counters at each 30-minute JST boundary, closed periods to settlement.

A period's energy is the difference of cumulative counters at its start and end boundary, so
a missed poll loses nothing. The counter value at a boundary is the first sample of each
channel at or after the boundary, accepted within the grace time; a channel not seen by then
is missing for both neighbouring periods (the settlement reports it, it is never guessed).
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
from gridctl.settlement.model import ChannelReading, PeriodReadings, counter_kwh
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


@dataclass
class RecorderState:
    """The persisted part of the recorder (JSON)."""

    open_start: datetime | None = None
    boundaries: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)
    pending: list[datetime] = field(default_factory=list)
    last_settled: datetime | None = None

    def to_json(self) -> str:
        return json.dumps({
            "open_start": self.open_start.isoformat() if self.open_start else None,
            "boundaries": self.boundaries,
            "pending": [p.isoformat() for p in self.pending],
            "last_settled": self.last_settled.isoformat() if self.last_settled else None,
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> RecorderState:
        data = json.loads(text)

        def t(v: str | None) -> datetime | None:
            return None if v is None else datetime.fromisoformat(v)

        return cls(t(data["open_start"]), data["boundaries"],
                   [datetime.fromisoformat(p) for p in data["pending"]], t(data["last_settled"]))


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
    """

    def __init__(self, channels: list[tuple[str, str]], grace_s: float, sink: PeriodSink,
                 state: RecorderState | None = None,
                 optional_channels: list[tuple[str, str]] | None = None) -> None:
        self.channels = channels
        self.optional_channels = list(optional_channels or [])
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
                if s.key not in row:
                    row[s.key] = [s.import_kwh, s.export_kwh]
                    self.dirty = True

    def settle_due(self, now: datetime) -> int:
        """Settle closed periods that are complete or past their grace time; returns how many."""
        st = self.state
        done = 0
        while st.pending and done < MAX_SETTLEMENTS_PER_CYCLE:
            start = st.pending[0]
            end = start + PERIOD
            end_row = st.boundaries.get(end.isoformat(), {})
            complete = all(_key(m, c) in end_row for m, c in self.channels)
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
            st.pending.pop(0)
            st.boundaries.pop(start.isoformat(), None)
            self.dirty = True
        return done

    def readings(self, start: datetime) -> PeriodReadings:
        """The counters of the period starting at ``start`` (missing ones as None)."""
        first = self.state.boundaries.get(start.isoformat(), {})
        last = self.state.boundaries.get((start + PERIOD).isoformat(), {})
        channels = []
        for member, channel in [*self.channels, *self.optional_channels]:
            a = first.get(_key(member, channel), [None, None])
            b = last.get(_key(member, channel), [None, None])
            channels.append(ChannelReading(member, channel, _dec(a[0]), _dec(a[1]),
                                           _dec(b[0]), _dec(b[1])))
        return PeriodReadings(start_utc=start.astimezone(UTC), channels=tuple(channels))

    def backlog(self) -> int:
        """Closed periods not yet settled."""
        return len(self.state.pending)

"""Telemetry points at the configured rate, through the same outbox as settlements.

When the outbox backlog is large (InfluxDB down for a long time) telemetry is thinned: only
every ``thin_factor``-th sample is queued, so the outbox never grows without bound and the
settlements queued behind it are never crowded out. Settlements are never thinned.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TelemetryPoint:
    """One measurement row.

    Attributes
    ----------
    measurement : str
    tags : dict of str to str
    fields : dict of str to float, int, str or bool
        Quantities with their unit in the name.
    at_utc : datetime
    """

    measurement: str
    tags: dict[str, str]
    fields: dict[str, Any]
    at_utc: datetime


class TelemetrySink(Protocol):
    """The outbox, as telemetry sees it."""

    def enqueue_telemetry(self, points: list[TelemetryPoint]) -> None:
        """Queue points for shipping."""

    def backlog(self) -> int:
        """Rows waiting in the outbox."""


class TelemetryRecorder:
    """Samples the snapshot every ``period_s`` and queues it.

    Parameters
    ----------
    site_id : str
    period_s : float
        Telemetry period [s].
    sink : TelemetrySink or None
        None disables telemetry.
    thin_above_rows : int
        Outbox backlog above which samples are thinned.
    thin_factor : int
        Keep one sample in this many while thinning.
    """

    def __init__(self, site_id: str, period_s: float, sink: TelemetrySink | None,
                 thin_above_rows: int = 50_000, thin_factor: int = 10) -> None:
        self.site_id, self.period_s, self.sink = site_id, period_s, sink
        self.thin_above_rows, self.thin_factor = thin_above_rows, thin_factor
        self._last: datetime | None = None
        self._skipped = 0
        self.queued = 0
        self.thinned = 0

    def observe(self, snapshot, state, report, now: datetime) -> None:
        """Queue one sample when the period has elapsed (wall clock; a step back restarts it)."""
        if self.sink is None:
            return
        if self._last is not None and 0 <= (now - self._last).total_seconds() < self.period_s:
            return
        self._last = now
        if self.sink.backlog() > self.thin_above_rows:
            self._skipped += 1
            if self._skipped % self.thin_factor:
                self.thinned += 1
                return
        points = self.points(snapshot, state, report, now)
        self.sink.enqueue_telemetry(points)
        self.queued += len(points)

    def transition(self, before: str, after: str, notes: tuple[str, ...], now: datetime) -> None:
        """Record a mode transition at once (never thinned: operators audit them)."""
        if self.sink is None:
            return
        self.sink.enqueue_telemetry([TelemetryPoint(
            "controller", {"site": self.site_id},
            {"transition_from": before, "transition_to": after, "notes": "; ".join(notes)}, now)])

    def points(self, snapshot, state, report, now: datetime) -> list[TelemetryPoint]:
        """Rows of one sample: one per node, one per measured router link, one per load-switch
        channel, one for the controller.

        The controller row carries what the device-health dashboard shows: the cycle's wall
        time ``cycle_s`` [s], faulted devices and stages, closed periods still waiting to be
        settled (``periods_pending``) and the outbox rows not yet shipped
        (``outbox_backlog_rows``, as seen when the sample was queued).
        """
        rows = []
        for node_id, r in snapshot.nodes.items():
            fields = {name: float(v) for name in ("pv_kw", "load_kw", "grid_kw", "battery_kw", "soc_pct")
                      if (v := getattr(r, name)) is not None}
            if fields:
                rows.append(TelemetryPoint("node", {"site": self.site_id, "node": node_id}, fields, now))
        for link_id, flow_kw in snapshot.link_flow_kw.items():
            if flow_kw is not None:  # positive from the link's from_router to its to_router
                rows.append(TelemetryPoint("link", {"site": self.site_id, "link": link_id},
                                           {"flow_kw": float(flow_kw)}, now))
        for device_id, channels in snapshot.switches.items():
            for r in channels:  # one row per load-switch channel: on = the circuit is connected
                fields = {name: v for name in ("commanded_on", "feedback_on")
                          if (v := getattr(r, name)) is not None}
                if fields:
                    rows.append(TelemetryPoint("switch", {"site": self.site_id,
                                                          "switch": f"{device_id}/{r.channel}"}, fields, now))
        faults = sum(1 for v in report.device_faults.values() if v is not None)
        rows.append(TelemetryPoint("controller", {"site": self.site_id}, {
            "mode": state.mode.value, "cycle_s": float(report.duration_s),
            "shed_tiers_off": len(state.shedding.off_tiers),
            "switch_faults": len(state.shedding.failed),
            "device_faults": faults, "stage_faults": len(report.stage_faults),
            "periods_pending": int(report.periods_pending),
            "outbox_backlog_rows": int(self.sink.backlog()) if self.sink is not None else 0}, now))
        return rows

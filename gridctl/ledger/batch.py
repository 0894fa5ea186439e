"""Settle many periods into the ledger: a readings file, or the ledger's own stored readings.

Used by ``gridctl settle run``. Periods are recorded a day (48 periods) per transaction; each
period is still all-or-nothing. They go through :class:`~gridctl.ledger.book.SettlementBook`,
as the daemon's and the simulator's do: the month-to-date grid import (for tiered tariffs) is
folded from the ledger, opening balance included.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from gridctl.config.site import SiteConfig
from gridctl.ledger.book import SettlementBook
from gridctl.ledger.store import Ledger
from gridctl.settlement.model import PeriodReadings, PeriodSettlement
from gridctl.settlement.readings_csv import parse_readings, periods_from_counters
from gridctl.settlement.timing import is_due

CHUNK = 48


@dataclass
class BatchSummary:
    """Counts of what a batch did, and the first period whose checks failed (if any)."""

    outcomes: dict[str, int] = field(default_factory=lambda: {"new": 0, "unchanged": 0, "corrected": 0})
    pending: int = 0
    flagged: int = 0
    failed: int = 0
    first_failure: str | None = None
    head_hash: str = ""

    def line(self, path: Path) -> str:
        o = self.outcomes
        return (
            f"{path}: settled {sum(o.values())} periods (new {o['new']}, unchanged {o['unchanged']}, "
            f"corrected {o['corrected']}), pending {self.pending}, flagged {self.flagged}, "
            f"failing checks {self.failed}; head {self.head_hash}"
        )


def _stored_readings(ledger: Ledger, start: dt.datetime | None, end: dt.datetime | None) -> list[PeriodReadings]:
    return [
        r for s, revision in ledger.settlements(start, end)
        if (r := ledger.readings(s.start_utc, revision)) is not None
    ]


def settle_into_ledger(
    site: SiteConfig, ledger: Ledger, readings_file: Path | None,
    start: dt.datetime | None = None, end: dt.datetime | None = None,
    now_utc: dt.datetime | None = None,
) -> BatchSummary:
    """Settle the periods of ``readings_file`` (or the ledger's stored readings) in ``[start, end)``."""
    if readings_file is not None:
        text = readings_file.read_text(encoding="utf-8")
        periods = periods_from_counters(parse_readings(text, str(readings_file)), start, end)
    else:
        periods = _stored_readings(ledger, start, end)
    now = now_utc or dt.datetime.now(dt.timezone.utc)
    summary = BatchSummary()
    due = [r for r in periods if is_due(site, r, now)]
    summary.pending = len(periods) - len(due)
    book = SettlementBook(site, ledger)
    for first in range(0, len(due), CHUNK):
        with ledger.batch():
            for readings in due[first:first + CHUNK]:
                settlement, result = book.settle(readings)
                summary.outcomes[result.outcome] += 1
                _note(summary, settlement)
    summary.head_hash = ledger.head_hash()
    return summary


def _note(summary: BatchSummary, settlement: PeriodSettlement) -> None:
    if settlement.flags:
        summary.flagged += 1
    if not settlement.checks.ok:
        summary.failed += 1
        if summary.first_failure is None:
            summary.first_failure = f"period {settlement.start_utc.isoformat()}: {settlement.checks.failures[0]}"

"""Settle many periods into the ledger: a readings file, or the ledger's own stored readings.

Used by ``gridctl settle run``. Periods are recorded a day (48 periods) per transaction; each
period is still all-or-nothing. The month-to-date grid import (for tiered tariffs) is carried
from period to period and restarts each local month.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from gridctl.config.site import SiteConfig
from gridctl.ledger.store import Ledger, RecordResult
from gridctl.settlement.model import PeriodReadings, PeriodSettlement
from gridctl.settlement.readings_csv import parse_readings, periods_from_counters
from gridctl.settlement.settle import settle_period
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


def settle_and_record(
    site: SiteConfig, ledger: Ledger, readings: PeriodReadings
) -> tuple[PeriodSettlement, RecordResult]:
    """Settle one period with the month-to-date import from the ledger, and record it.

    The one call the daemon and the simulator make when a period is due (see
    :func:`gridctl.settlement.timing.is_due`).
    """
    local = readings.start_utc.astimezone(ZoneInfo(site.site.timezone))
    month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(dt.timezone.utc)
    mtd = ledger.month_to_date_import_kwh(readings.start_utc, month_start)
    settlement = settle_period(site, readings, mtd)
    return settlement, ledger.record(settlement, readings)


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
    zone = ZoneInfo(site.site.timezone)
    mtd: dict[str, Decimal] = {}
    month = None
    batch: list[tuple[PeriodSettlement, PeriodReadings]] = []
    for readings in periods:
        if not is_due(site, readings, now):
            summary.pending += 1
            continue
        local = readings.start_utc.astimezone(zone)
        if (local.year, local.month) != month:
            month = (local.year, local.month)
            first = local.replace(day=1, hour=0, minute=0).astimezone(dt.timezone.utc)
            mtd = ledger.month_to_date_import_kwh(readings.start_utc, first)
        settlement = settle_period(site, readings, mtd)
        for m in settlement.members:
            mtd[m.member_id] = mtd.get(m.member_id, Decimal(0)) + m.grid_import_kwh
        _note(summary, settlement)
        batch.append((settlement, readings))
        if len(batch) >= CHUNK:
            _flush(ledger, batch, summary)
    _flush(ledger, batch, summary)
    summary.head_hash = ledger.head_hash()
    return summary


def _note(summary: BatchSummary, settlement: PeriodSettlement) -> None:
    if settlement.flags:
        summary.flagged += 1
    if not settlement.checks.ok:
        summary.failed += 1
        if summary.first_failure is None:
            summary.first_failure = f"period {settlement.start_utc.isoformat()}: {settlement.checks.failures[0]}"


def _flush(ledger: Ledger, batch: list, summary: BatchSummary) -> None:
    for result in ledger.record_many(batch):
        summary.outcomes[result.outcome] += 1
    batch.clear()

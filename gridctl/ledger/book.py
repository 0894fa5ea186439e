"""The one way a period is settled into the ledger: month-to-date import folded from the ledger.

Tiered tariffs price a period by the member's grid import earlier in the same site-local calendar
month. That month-to-date import is, by definition, the month's opening balance (if the ledger
has one, see :meth:`Ledger.record_opening_month_import`) plus the ``grid_import_kwh`` of the
member lines of the current settlements of the month's earlier periods. The daemon's recorder,
``gridctl settle run``, the simulator and ``gridctl settle verify --config`` all use this fold,
so verifying re-settles every period from exactly what it was settled from.

A :class:`SettlementBook` caches the fold of the month it is in, so settling period after period
costs one small query each (the ledger's head hash), not a scan of the month. The cache is
keyed by the head hash: any write it did not make itself (a correction from another process, a
rolled-back batch) makes it fold the month again from the ledger.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from gridctl.config.site import SiteConfig
from gridctl.ledger.store import Ledger, RecordResult
from gridctl.settlement.model import PeriodReadings, PeriodSettlement
from gridctl.settlement.settle import settle_period

PERIOD = dt.timedelta(minutes=30)


def month_bounds_utc(site: SiteConfig, at_utc: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The site-local calendar month ``[start, end)`` holding ``at_utc``, in UTC."""
    zone = ZoneInfo(site.site.timezone)
    local = at_utc.astimezone(zone)
    start = dt.datetime(local.year, local.month, 1, tzinfo=zone)
    end = dt.datetime(local.year + local.month // 12, local.month % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(dt.timezone.utc), end.astimezone(dt.timezone.utc)


@dataclass
class _Fold:
    """Month-to-date import of every member over ``[month_start, through)`` at ledger head ``head``."""

    month_start_utc: dt.datetime
    through_utc: dt.datetime
    head: str
    import_kwh: dict[str, Decimal]


def _add(total: dict[str, Decimal], more: Mapping[str, Decimal]) -> None:
    for member, kwh in more.items():
        total[member] = total.get(member, Decimal(0)) + kwh


class SettlementBook:
    """Settles periods of ``site`` into ``ledger`` with the month-to-date import folded from it.

    Parameters
    ----------
    site : SiteConfig
        Tariffs, market rules and the time zone that defines a month.
    ledger : Ledger
        Where settlements are recorded and the fold is read from.
    """

    def __init__(self, site: SiteConfig, ledger: Ledger) -> None:
        self.site, self.ledger = site, ledger
        self._fold: _Fold | None = None

    def month_to_date_import_kwh(self, period_start_utc: dt.datetime) -> dict[str, Decimal]:
        """Grid import of each member in the period's month before the period [kWh].

        The month's opening balance plus the current settlements of its earlier periods.
        """
        return dict(self._fold_to(period_start_utc).import_kwh)

    def settle(self, readings: PeriodReadings) -> tuple[PeriodSettlement, RecordResult]:
        """Settle one period and record it (idempotent; a changed result is a correction).

        Reading the fold, settling and recording happen in one ledger transaction.
        """
        with self.ledger.batch():
            fold = self._fold_to(readings.start_utc)
            settlement = settle_period(self.site, readings, dict(fold.import_kwh))
            result = self.ledger.record(settlement, readings)
            _add(fold.import_kwh, {m.member_id: m.grid_import_kwh for m in settlement.members})
            fold.through_utc = readings.end_utc
            fold.head = self.ledger.head_hash()
        return settlement, result

    def record_opening_month_import(
        self, at_utc: dt.datetime, imports_kwh: Mapping[str, Decimal | str], source: str = ""
    ) -> None:
        """Record the grid import of each member earlier in the month of ``at_utc`` [kWh].

        See :meth:`Ledger.record_opening_month_import`; the month is the site-local one, and
        every member must be a node of the site.
        """
        unknown = sorted(set(imports_kwh) - {n.id for n in self.site.nodes})
        if unknown:
            raise ValueError(f"opening balance for unknown member(s): {', '.join(unknown)}")
        start, end = month_bounds_utc(self.site, at_utc)
        self.ledger.record_opening_month_import(start, end, imports_kwh, source)
        self._fold = None

    def _fold_to(self, period_start_utc: dt.datetime) -> _Fold:
        month_start, _ = month_bounds_utc(self.site, period_start_utc)
        head = self.ledger.head_hash()
        fold = self._fold
        if (fold is None or fold.month_start_utc != month_start or fold.head != head
                or period_start_utc < fold.through_utc):
            # a new month, a write made elsewhere, or an earlier period (a correction): fold again
            total = self.ledger.opening_month_import(month_start)
            _add(total, self.ledger.grid_import_kwh(month_start, period_start_utc))
            fold = self._fold = _Fold(month_start, period_start_utc, head, total)
        elif fold.through_utc < period_start_utc:  # periods settled elsewhere, or none (a gap)
            _add(fold.import_kwh, self.ledger.grid_import_kwh(fold.through_utc, period_start_utc))
            fold.through_utc = period_start_utc
        return fold


def settle_and_record(
    site: SiteConfig, ledger: Ledger, readings: PeriodReadings
) -> tuple[PeriodSettlement, RecordResult]:
    """Settle one period with the month-to-date import folded from ``ledger``, and record it.

    A one-off :class:`SettlementBook`; to settle many periods keep one book.
    """
    return SettlementBook(site, ledger).settle(readings)

"""Pure tariff lookups: which tariff version applies, and the marginal price of a kWh.

The P2P pricing formulas of domain.md need, per member and 30-minute period, the grid retail
price ``lambda_b`` (what one more imported kWh costs) and the grid export price ``lambda_s``.
Both come from the dated, versioned tariffs of the site file. Money is ``Decimal``; no rounding
happens here (it happens once, when a ledger entry is made).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

import holidays

from gridctl.config.policy import AuctionRules
from gridctl.config.site import SiteConfig
from gridctl.config.tariffs import ExportTariff, ImportTariff, TimeOfUseWindow

#: Length of a Japanese settlement period.
SETTLEMENT_PERIOD = dt.timedelta(minutes=30)
JST = ZoneInfo("Asia/Tokyo")


class TariffLookupError(LookupError):
    """No version of a tariff is valid on the date asked for."""


def tariff_version(
    site: SiteConfig, tariff_id: str, local_date: dt.date
) -> ImportTariff | ExportTariff:
    """The version of ``tariff_id`` valid on ``local_date`` (site-local calendar date)."""
    for tariff in site.tariffs:
        if tariff.id == tariff_id and tariff.valid_on(local_date):
            return tariff
    raise TariffLookupError(f"tariff '{tariff_id}' has no version valid on {local_date}")


@dataclass(frozen=True)
class MarketTerms:
    """The market terms in force for a period.

    ``effective_from`` is the site-local date of the change that set them (None: the terms
    from the beginning); the fee is per delivered P2P kWh, paid by the buyer [JPY/kWh].
    """

    mechanism: str
    platform_fee_jpy_per_kwh: Decimal
    auction: AuctionRules
    effective_from: dt.date | None = None


def market_in_force(site: SiteConfig, period_start_utc: dt.datetime) -> MarketTerms:
    """The market terms (mechanism, fee) in force at ``period_start_utc``: the site's
    ``market`` fields with every change dated on or before the period's site-local day."""
    _require_aware(period_start_utc)
    day = period_start_utc.astimezone(ZoneInfo(site.site.timezone)).date()
    market = site.market
    terms = MarketTerms(market.mechanism, market.platform_fee_jpy_per_kwh, market.auction)
    for change in market.changes:
        if change.effective_from > day:
            break
        terms = MarketTerms(
            change.mechanism or terms.mechanism,
            terms.platform_fee_jpy_per_kwh if change.platform_fee_jpy_per_kwh is None
            else change.platform_fee_jpy_per_kwh,
            market.auction, change.effective_from,
        )
    return terms


def _require_aware(at_utc: dt.datetime) -> None:
    if at_utc.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")


@functools.lru_cache(maxsize=64)
def _japan_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("JP", years=year)


def is_weekend_or_holiday(local_day: dt.date) -> bool:
    """Saturday, Sunday or a Japanese national holiday."""
    return local_day.weekday() >= 5 or local_day in _japan_holidays(local_day.year)


def _window_matches(window: TimeOfUseWindow, local: dt.datetime) -> bool:
    off_day = is_weekend_or_holiday(local.date())
    if window.days == "weekday" and off_day:
        return False
    if window.days == "weekend_holiday" and not off_day:
        return False
    clock = local.time().replace(tzinfo=None)
    start, end = window.start, window.end
    if start == end:
        return True  # the whole day
    if start < end:
        return start <= clock < end
    return clock >= start or clock < end  # wraps midnight


def _energy_price(tariff: ImportTariff, local: dt.datetime, month_to_date_kwh: Decimal) -> Decimal:
    if tariff.time_of_use is not None:
        for window in tariff.time_of_use:
            if _window_matches(window, local):
                return window.price_jpy_per_kwh
        raise TariffLookupError(f"tariff '{tariff.id}' has no time-of-use window for {local:%a %H:%M}")
    assert tariff.energy_tiers is not None
    for tier in tariff.energy_tiers:
        if tier.up_to_kwh is None or month_to_date_kwh < tier.up_to_kwh:
            return tier.price_jpy_per_kwh
    return tariff.energy_tiers[-1].price_jpy_per_kwh


def fuel_cost_adjustment_jpy_per_kwh(tariff: ImportTariff, local_day: dt.date) -> Decimal:
    """The fuel cost adjustment unit price for the month of ``local_day``."""
    key = f"{local_day:%Y-%m}"
    return tariff.fuel_cost_adjustment_by_month.get(key, tariff.fuel_cost_adjustment_jpy_per_kwh)


def fuel_adjustment_defaulted(tariff: ImportTariff, local_day: dt.date) -> bool:
    """The tariff has a monthly fuel cost adjustment table without the month of ``local_day``
    (so the flat ``fuel_cost_adjustment_jpy_per_kwh`` is used)."""
    table = tariff.fuel_cost_adjustment_by_month
    return bool(table) and f"{local_day:%Y-%m}" not in table


def fuel_adjustment_gaps(tariff: ImportTariff) -> list[str]:
    """Months (``YYYY-MM``) missing from the fuel cost adjustment table between its first and
    last month."""
    months = sorted(tariff.fuel_cost_adjustment_by_month)
    if not months:
        return []
    year, month = (int(x) for x in months[0].split("-"))
    gaps = []
    while f"{year:04d}-{month:02d}" < months[-1]:
        key = f"{year:04d}-{month:02d}"
        if key not in tariff.fuel_cost_adjustment_by_month:
            gaps.append(key)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return gaps


def _with_tax(tariff: ImportTariff | ExportTariff, price: Decimal) -> Decimal:
    if tariff.prices_include_tax:
        return price
    return price * (Decimal(1) + tariff.consumption_tax_pct / Decimal(100))


def import_price_jpy_per_kwh(
    tariff: ImportTariff,
    at_utc: dt.datetime,
    tz: str | dt.tzinfo = JST,
    month_to_date_kwh: Decimal = Decimal(0),
) -> Decimal:
    """Marginal retail price of one more imported kWh at ``at_utc`` [JPY/kWh, tax-inclusive].

    Energy price (time-of-use window, or the tier reached by ``month_to_date_kwh`` [kWh]) plus
    renewable surcharge plus the month's fuel cost adjustment.
    """
    _require_aware(at_utc)
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    local = at_utc.astimezone(zone)
    price = _energy_price(tariff, local, Decimal(month_to_date_kwh))
    price += tariff.renewable_surcharge_jpy_per_kwh
    price += fuel_cost_adjustment_jpy_per_kwh(tariff, local.date())
    return _with_tax(tariff, price)


def import_tier_blocks(tariff: ImportTariff, month_to_date_kwh: Decimal = Decimal(0),
                       ) -> list[tuple[Decimal | None, Decimal]]:
    """The monthly tiers still ahead at ``month_to_date_kwh`` [kWh], as blocks.

    Each block is ``(width_kwh, increment_jpy_per_kwh)``: the kWh left in the tier (None for
    the open top tier) and its price above the tier reached so far (tax-inclusive, so it
    adds to :func:`import_price_jpy_per_kwh` at the same month-to-date import).  A tariff
    without tiers is one open block at no increment.
    """
    if tariff.energy_tiers is None:
        return [(None, Decimal(0))]
    mtd = Decimal(month_to_date_kwh)
    blocks: list[tuple[Decimal | None, Decimal]] = []
    start, base = Decimal(0), None
    for tier in tariff.energy_tiers:
        end = tier.up_to_kwh
        if end is None or mtd < end:
            base = tier.price_jpy_per_kwh if base is None else base
            width = None if end is None else end - max(start, mtd)
            blocks.append((width, _with_tax(tariff, tier.price_jpy_per_kwh - base)))
        if end is None:
            break
        start = end
    if blocks and blocks[-1][0] is not None:  # the last tier is bounded: price stays above it
        blocks.append((None, blocks[-1][1]))
    return blocks or [(None, Decimal(0))]


def export_price_jpy_per_kwh(tariff: ExportTariff) -> Decimal:
    """Buy-back price of one exported kWh [JPY/kWh, tax-inclusive]."""
    return _with_tax(tariff, tariff.price_jpy_per_kwh)


def settlement_period(at_utc: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The half-open JST 30-minute period ``[start, end)`` holding ``at_utc``, in UTC."""
    _require_aware(at_utc)
    local = at_utc.astimezone(JST)
    start_local = local.replace(minute=(local.minute // 30) * 30, second=0, microsecond=0)
    start = start_local.astimezone(dt.timezone.utc)
    return start, start + SETTLEMENT_PERIOD


def period_label(start_utc: dt.datetime) -> str:
    """Stable label of a period, its JST start: ``2026-08-01T10:30+09:00``."""
    return start_utc.astimezone(JST).isoformat(timespec="minutes")

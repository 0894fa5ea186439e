"""Hand-checked tariff lookups on the reference site's tariffs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from gridctl.config import load_site
from gridctl.tariffs import (
    TariffLookupError,
    export_price_jpy_per_kwh,
    import_price_jpy_per_kwh,
    period_label,
    settlement_period,
    tariff_version,
)

SITE = load_site(Path(__file__).resolve().parents[2] / "configs" / "misono.yaml")
UTC = dt.timezone.utc


def at_jst(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.timezone(dt.timedelta(hours=9))).astimezone(UTC)


def test_tiered_price_follows_month_to_date() -> None:
    tariff = tariff_version(SITE, "tepco-juryo-b", dt.date(2026, 8, 3))
    when = at_jst(2026, 8, 3, 12, 10)
    # 29.80 energy + 3.98 surcharge - 1.70 August fuel adjustment
    assert import_price_jpy_per_kwh(tariff, when) == Decimal("32.08")
    # second tier from 120 kWh: 36.40 + 3.98 - 1.70
    assert import_price_jpy_per_kwh(tariff, when, month_to_date_kwh=Decimal("150")) == Decimal("38.68")
    assert import_price_jpy_per_kwh(tariff, when, month_to_date_kwh=Decimal("300")) == Decimal("42.77")
    # October is not listed: the flat -1.50 applies
    assert import_price_jpy_per_kwh(tariff, at_jst(2026, 10, 5, 1, 0)) == Decimal("32.28")


def test_time_of_use_windows_weekday_weekend_and_wrap() -> None:
    tariff = tariff_version(SITE, "tepco-business-tou", dt.date(2026, 8, 3))
    monday_noon = at_jst(2026, 8, 3, 12, 0)
    monday_night = at_jst(2026, 8, 3, 23, 30)  # in the 21:00-09:00 window that wraps midnight
    sunday_noon = at_jst(2026, 8, 2, 12, 0)
    mountain_day = at_jst(2026, 8, 11, 12, 0)  # national holiday on a Tuesday
    assert import_price_jpy_per_kwh(tariff, monday_noon) == Decimal("36.68")
    assert import_price_jpy_per_kwh(tariff, monday_night) == Decimal("29.58")
    assert import_price_jpy_per_kwh(tariff, sunday_noon) == Decimal("29.58")
    assert import_price_jpy_per_kwh(tariff, mountain_day) == Decimal("29.58")


def test_export_price_and_unknown_version() -> None:
    assert export_price_jpy_per_kwh(tariff_version(SITE, "fit-fy2025", dt.date(2026, 1, 1))) == Decimal("15.00")
    with pytest.raises(TariffLookupError, match="no version valid on 2020-01-01"):
        tariff_version(SITE, "fit-fy2025", dt.date(2020, 1, 1))


def test_settlement_period_is_jst_aligned_half_open() -> None:
    start, end = settlement_period(at_jst(2026, 8, 1, 10, 29, 59))
    assert (start, end) == (at_jst(2026, 8, 1, 10, 0), at_jst(2026, 8, 1, 10, 30))
    assert settlement_period(at_jst(2026, 8, 1, 10, 30))[0] == at_jst(2026, 8, 1, 10, 30)
    assert period_label(start) == "2026-08-01T10:00+09:00"
    with pytest.raises(ValueError, match="timezone-aware"):
        settlement_period(dt.datetime(2026, 8, 1, 10, 0))

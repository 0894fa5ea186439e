"""Tariffs as dated, versioned configuration.

Prices are quoted tax-inclusive (the Japanese retail convention) unless ``prices_include_tax``
says otherwise. Several versions of one tariff id may exist; each is valid on ``[valid_from,
valid_to)`` in local dates and versions of one id must not overlap.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from gridctl.config.base import MAX_ANNUAL_KWH, Identifier, NonNegativeYen, StrictModel, YenPerKwh


class Rounding(StrictModel):
    """How a statement is rounded (domain.md: kWh to integer, yen fractions cut, tax once)."""

    kwh_decimals: int = Field(default=0, ge=0, le=3, description="monthly kWh decimals")
    kwh_mode: Literal["half_up", "floor"] = "half_up"
    yen_mode: Literal["floor", "half_up", "ceil"] = "floor"
    tax_mode: Literal["floor", "half_up", "ceil"] = "floor"


class EnergyTier(StrictModel):
    """A block of monthly consumption at one unit price."""

    up_to_kwh: Decimal | None = Field(
        default=None, gt=0, le=Decimal(MAX_ANNUAL_KWH), description="null: unbounded top tier"
    )
    price_jpy_per_kwh: YenPerKwh


class TimeOfUseWindow(StrictModel):
    """A local-time window of a time-of-use tariff, half-open [start, end); end may wrap midnight."""

    days: Literal["all", "weekday", "weekend_holiday"] = "all"
    start: dt.time
    end: dt.time
    price_jpy_per_kwh: YenPerKwh


class _TariffBase(StrictModel):
    id: Identifier
    name: str = ""
    version: str = Field(min_length=1, description="publisher's version label")
    valid_from: dt.date
    valid_to: dt.date | None = Field(default=None, description="exclusive; null: open-ended")
    consumption_tax_pct: Decimal = Field(default=Decimal("10"), ge=0, le=100)
    prices_include_tax: bool = True
    rounding: Rounding = Rounding()

    @model_validator(mode="after")
    def _dates_ordered(self):  # noqa: ANN202 - returns self
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self

    def valid_on(self, day: dt.date) -> bool:
        """Whether this version applies on local date ``day``."""
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


class ImportTariff(_TariffBase):
    """Retail supply tariff (e.g. TEPCO Juryo-Dento B or a time-of-use plan)."""

    kind: Literal["import"]
    basic_charge_jpy_per_10a_month: NonNegativeYen | None = None
    basic_charge_jpy_per_month: NonNegativeYen | None = None
    energy_tiers: list[EnergyTier] | None = None
    time_of_use: list[TimeOfUseWindow] | None = None
    renewable_surcharge_jpy_per_kwh: YenPerKwh = Decimal("0")
    fuel_cost_adjustment_jpy_per_kwh: YenPerKwh = Decimal("0")
    fuel_cost_adjustment_by_month: dict[str, YenPerKwh] = Field(
        default_factory=dict, description="'YYYY-MM' -> unit price; overrides the flat value"
    )

    @field_validator("fuel_cost_adjustment_by_month")
    @classmethod
    def _months_well_formed(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for month in value:
            try:
                dt.datetime.strptime(month, "%Y-%m")
            except ValueError:
                raise ValueError(f"month key '{month}' is not YYYY-MM") from None
        return value

    @model_validator(mode="after")
    def _one_energy_scheme(self) -> ImportTariff:
        if (self.energy_tiers is None) == (self.time_of_use is None):
            raise ValueError("give exactly one of 'energy_tiers' or 'time_of_use'")
        if self.energy_tiers is not None:
            _check_tiers(self.energy_tiers)
        if self.basic_charge_jpy_per_10a_month and self.basic_charge_jpy_per_month:
            raise ValueError("give at most one basic charge (per 10 A or per month)")
        return self


def _check_tiers(tiers: list[EnergyTier]) -> None:
    if not tiers:
        raise ValueError("energy_tiers must not be empty")
    bounds = [t.up_to_kwh for t in tiers]
    if bounds[-1] is not None or any(b is None for b in bounds[:-1]):
        raise ValueError("only the last energy tier may (and must) have up_to_kwh null")
    finite = [b for b in bounds if b is not None]
    if finite != sorted(set(finite)):
        raise ValueError("energy tier bounds must increase strictly")


class ExportTariff(_TariffBase):
    """Buy-back of exported PV energy (FIT or post-FIT)."""

    kind: Literal["export"]
    scheme: Literal["fit", "post_fit"]
    price_jpy_per_kwh: YenPerKwh


Tariff = Annotated[ImportTariff | ExportTariff, Field(discriminator="kind")]
TariffId = Identifier

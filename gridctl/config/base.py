"""Shared building blocks of the configuration schema: the strict base model and typed fields.

Every model is frozen and forbids unknown keys, so a typo in a site file is an error at load,
never a silently ignored setting. Every number must be finite (``.inf``, ``.nan`` and literals
such as ``1e999`` that overflow to infinity are rejected), and every physical quantity has a
plausible upper bound for a neighbourhood block that may include a shopping mall: a value far
beyond it is a typo (a home battery of 1e6 kWh), not a site.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

#: Lower-case identifier used for every id in a site file (nodes, devices, routers, tariffs...).
Identifier = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$"),
    Field(description="identifier: lower-case letters, digits, '-', '_' or '.', at most 64"),
]

# -- plausible upper bounds of a block (documented in README "Configuration reference") --------
#: Power of one device, link, leg or grid connection [kW] (10 MW).
MAX_POWER_KW = 10_000.0
#: Usable energy of one battery [kWh] (100 MWh).
MAX_ENERGY_KWH = 100_000.0
#: Yearly consumption of one member [kWh/a] (100 GWh, beyond 10 MW all year round).
MAX_ANNUAL_KWH = 100_000_000.0
#: Any unit energy price or cost [JPY/kWh].
MAX_PRICE_JPY_PER_KWH = 1000
#: Value of lost load [JPY/kWh] (a penalty, far above any tariff).
MAX_VALUE_OF_LOST_LOAD_JPY_PER_KWH = 1_000_000.0
#: Demand (basic) charge [JPY/kW-month].
MAX_DEMAND_CHARGE_JPY_PER_KW_MONTH = 100_000.0
#: A monthly charge [JPY].
MAX_MONTHLY_CHARGE_JPY = 100_000_000
#: Nominal or limit voltage [V] (up to 6.6 kV high-voltage distribution).
MAX_VOLTAGE_V = 7_000.0
#: Grid frequency [Hz].
MAX_FREQUENCY_HZ = 100.0
#: Device-side timers and delays [s] (one day).
MAX_DEVICE_TIMER_S = 86_400.0

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Percent = Annotated[float, Field(ge=0, le=100)]
PositivePercent = Annotated[float, Field(gt=0, le=100)]
PowerKw = Annotated[float, Field(gt=0, le=MAX_POWER_KW)]
NonNegativePowerKw = Annotated[float, Field(ge=0, le=MAX_POWER_KW)]
EnergyKwh = Annotated[float, Field(gt=0, le=MAX_ENERGY_KWH)]
AnnualEnergyKwh = Annotated[float, Field(gt=0, le=MAX_ANNUAL_KWH)]
CostJpyPerKwh = Annotated[float, Field(ge=0, le=MAX_PRICE_JPY_PER_KWH)]
ValueOfLostLoadJpyPerKwh = Annotated[
    float, Field(gt=0, le=MAX_VALUE_OF_LOST_LOAD_JPY_PER_KWH)
]
DemandChargeJpyPerKwMonth = Annotated[float, Field(ge=0, le=MAX_DEMAND_CHARGE_JPY_PER_KW_MONTH)]
VoltageV = Annotated[float, Field(gt=0, le=MAX_VOLTAGE_V)]
FrequencyHz = Annotated[float, Field(gt=0, le=MAX_FREQUENCY_HZ)]
DeviceTimerS = Annotated[float, Field(gt=0, le=MAX_DEVICE_TIMER_S)]
YenPerKwh = Annotated[
    Decimal, Field(ge=Decimal(-MAX_PRICE_JPY_PER_KWH), le=Decimal(MAX_PRICE_JPY_PER_KWH))
]
NonNegativeYenPerKwh = Annotated[Decimal, Field(ge=0, le=Decimal(MAX_PRICE_JPY_PER_KWH))]
NonNegativeYen = Annotated[Decimal, Field(ge=0, le=Decimal(MAX_MONTHLY_CHARGE_JPY))]


class StrictModel(BaseModel):
    """Frozen model that rejects unknown keys and non-finite numbers."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        str_strip_whitespace=True,
        validate_default=True,
        allow_inf_nan=False,
    )

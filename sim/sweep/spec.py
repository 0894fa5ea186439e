"""The sweep file: a base site, a simulation window, the parameters to vary and the metrics.

Validated by pydantic (frozen, unknown keys forbidden) through the site loader's YAML reading,
so every problem names ``FILE:LINE: key.path: message``. A case is one :class:`CaseParams`;
the sweep's cases are the product of the ``grid`` lists, each combined with every explicit
entry of ``cases`` (a key may be varied in one of them only). Unset parameters keep the base
site's value.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from gridctl.config.base import Identifier, StrictModel
from gridctl.config.tariffs import Tariff
from sim.outages import SpecError, parse_duration
from sim.sweep.metrics import DEFAULT_METRICS, METRIC_NAMES

__all__ = ["CaseParams", "SweepFile", "SweepGrid", "TariffFile", "TariffSet", "Window",
           "PARAM_NAMES"]


def _iso_text(value: object) -> object:
    """YAML reads ``2026-08-10`` as a date; keep every instant as its ISO text."""
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


def _instant(text: str) -> str:
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{text}': expected an ISO date like 2026-08-10 or 2026-08-10T14:00") from None
    return text


def _duration(text: str) -> str:
    try:
        parse_duration(text)
    except SpecError as exc:
        raise ValueError(str(exc)) from None
    return text


#: An instant as ISO text; without an offset it is site-local time.
Instant = Annotated[str, BeforeValidator(_iso_text), AfterValidator(_instant)]
#: A duration as text: ``72h``, ``15min``, ``1d12h``.
Duration = Annotated[str, AfterValidator(_duration)]
Scale = Annotated[float, Field(gt=0, le=100)]
CapacityKwh = Annotated[float, Field(gt=0, le=1_000_000)]
ReserveH = Annotated[float, Field(ge=0, le=240)]
Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]
Mechanism = Literal["sdr", "mmr", "uniform_auction"]


class CaseParams(StrictModel):
    """One case's parameters; None keeps the base site's value.

    Attributes
    ----------
    battery_scale : float
        Multiplies every battery's ``capacity_kwh`` [-] (power ratings stay).
    battery_capacity_kwh : dict
        Node id -> the node's battery capacity [kWh] (split over its batteries in proportion
        to their base capacity); applied before ``battery_scale``.
    tariff : dict
        Node id -> import tariff id.
    tariff_set : str
        Name of an entry of the sweep's ``tariff_sets``.
    mechanism : {'sdr', 'mmr', 'uniform_auction'}
        P2P settlement mechanism.
    reserve_hours_h : float
        Critical-load hours kept in store while grid-connected [h].
    outage_start, outage_length, outage_warning : str
        One utility outage: start (site-local unless an offset is given), length and the lead
        time the controller is told (default 0: unannounced).
    seed : int
        Profile seed (default 1).
    """

    battery_scale: Scale | None = None
    battery_capacity_kwh: dict[Identifier, CapacityKwh] | None = None
    tariff: dict[Identifier, Identifier] | None = None
    tariff_set: Identifier | None = None
    mechanism: Mechanism | None = None
    reserve_hours_h: ReserveH | None = None
    outage_start: Instant | None = None
    outage_length: Duration | None = None
    outage_warning: Duration | None = None
    seed: Seed | None = None

    @model_validator(mode="after")
    def _outage_complete(self) -> CaseParams:
        if (self.outage_start is None) != (self.outage_length is None):
            raise ValueError("outage_start and outage_length go together")
        if self.outage_warning is not None and self.outage_start is None:
            raise ValueError("outage_warning needs outage_start and outage_length")
        return self


#: Parameter names, in column order.
PARAM_NAMES: tuple[str, ...] = tuple(CaseParams.model_fields)


class SweepGrid(StrictModel):
    """Lists of values; the sweep runs every combination (their product)."""

    battery_scale: list[Scale] | None = Field(default=None, min_length=1)
    battery_capacity_kwh: list[dict[Identifier, CapacityKwh]] | None = Field(default=None, min_length=1)
    tariff: list[dict[Identifier, Identifier]] | None = Field(default=None, min_length=1)
    tariff_set: list[Identifier] | None = Field(default=None, min_length=1)
    mechanism: list[Mechanism] | None = Field(default=None, min_length=1)
    reserve_hours_h: list[ReserveH] | None = Field(default=None, min_length=1)
    outage_start: list[Instant] | None = Field(default=None, min_length=1)
    outage_length: list[Duration] | None = Field(default=None, min_length=1)
    outage_warning: list[Duration] | None = Field(default=None, min_length=1)
    seed: list[Seed] | None = Field(default=None, min_length=1)


class TariffSet(StrictModel):
    """A named tariff set: a tariff file replacing the site's tariffs and/or contract changes."""

    file: Path | None = Field(default=None, description="YAML with a 'tariffs:' list, relative "
                              "to the sweep file; replaces the site's tariffs")
    tariff: dict[Identifier, Identifier] = Field(default_factory=dict,
                                                 description="node id -> import tariff id")
    buyback_tariff: dict[Identifier, Identifier] = Field(default_factory=dict,
                                                         description="node id -> export tariff id")


class TariffFile(StrictModel):
    """A tariff file of a tariff set (the site file's ``tariffs`` section on its own)."""

    tariffs: list[Tariff] = Field(min_length=1)


class Window(StrictModel):
    """The simulated span and how it is simulated (as ``gridctl simulate``'s options)."""

    start: Instant
    days: float = Field(gt=0, le=366)
    step: Duration = "15min"
    replan: Duration | None = Field(default=None, description="null: the site's replan_period_s")
    baselines: list[Literal["foresight", "standalone"]] = Field(default_factory=list)
    sky: Literal["stochastic", "clear"] = "stochastic"
    initial_soc_pct: float = Field(default=50.0, ge=0, le=100)


class SweepFile(StrictModel):
    """A sweep file as written."""

    base_site: Path = Field(description="site file, relative to the sweep file")
    window: Window
    grid: SweepGrid = SweepGrid()
    cases: list[CaseParams] = Field(default_factory=list)
    tariff_sets: dict[Identifier, TariffSet] = Field(default_factory=dict)
    metrics: list[str] = Field(default_factory=lambda: list(DEFAULT_METRICS), min_length=1)

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, names: list[str]) -> list[str]:
        unknown = [n for n in names if n not in METRIC_NAMES]
        if unknown:
            raise ValueError(f"unknown metric '{unknown[0]}' (choose from {', '.join(METRIC_NAMES)})")
        if len(set(names)) != len(names):
            raise ValueError("a metric is listed twice")
        return names

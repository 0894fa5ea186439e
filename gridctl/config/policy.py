"""Block-wide policies: market, islanding, control loop and storage."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from gridctl.config.base import (
    FrequencyHz,
    NonNegativeYenPerKwh,
    StrictModel,
    ValueOfLostLoadJpyPerKwh,
    VoltageV,
    YenPerKwh,
)


class AuctionRules(StrictModel):
    """Uniform-price (pay-as-clear) double auction; bids derive from each member's tariff."""

    price_floor_jpy_per_kwh: YenPerKwh = Decimal("0")
    price_cap_jpy_per_kwh: YenPerKwh = Decimal("50")

    @model_validator(mode="after")
    def _floor_below_cap(self) -> AuctionRules:
        if self.price_floor_jpy_per_kwh >= self.price_cap_jpy_per_kwh:
            raise ValueError("price_floor_jpy_per_kwh must be below price_cap_jpy_per_kwh")
        return self


Mechanism = Literal["sdr", "mmr", "uniform_auction"]


class MarketChange(StrictModel):
    """A change of the market terms from a site-local date on; an absent field is unchanged."""

    effective_from: dt.date = Field(description="first site-local day the change is in force")
    mechanism: Mechanism | None = None
    platform_fee_jpy_per_kwh: NonNegativeYenPerKwh | None = Field(
        default=None, description="fee per P2P kWh, paid by the buyer [JPY/kWh]"
    )


class Market(StrictModel):
    """P2P market rules. The settlement period is the Japanese 30-minute period (fixed).

    ``mechanism`` and ``platform_fee_jpy_per_kwh`` are the terms from the beginning;
    ``changes`` date later terms, like tariff versions (see ``gridctl.tariffs.market_in_force``).
    """

    mechanism: Mechanism = "sdr"
    platform_fee_jpy_per_kwh: NonNegativeYenPerKwh = Field(
        default=Decimal("0"), description="fee per P2P kWh, paid by the buyer [JPY/kWh]"
    )
    changes: list[MarketChange] = Field(
        default_factory=list, description="dated changes of mechanism and fee, dates strictly increasing"
    )
    settlement_period_min: Literal[30] = 30
    grace_period_s: int = Field(default=120, ge=0, le=86400, description="wait for late counters")
    auction: AuctionRules = AuctionRules()

    @field_validator("changes")
    @classmethod
    def _dates_increase(cls, value: list[MarketChange]) -> list[MarketChange]:
        for before, after in zip(value, value[1:]):
            if after.effective_from <= before.effective_from:
                raise ValueError(f"effective_from must increase strictly: {after.effective_from} "
                                 f"does not come after {before.effective_from}")
        return value


class ShedTier(StrictModel):
    """A sheddable load tier and what an unserved kWh of it costs."""

    tier: int = Field(ge=1, le=9)
    value_of_lost_load_jpy_per_kwh: ValueOfLostLoadJpyPerKwh


class GridLimitsV(StrictModel):
    """Band of healthy grid voltage [V]."""

    min_v: VoltageV
    max_v: VoltageV


class GridLimitsHz(StrictModel):
    """Band of healthy grid frequency [Hz]."""

    min_hz: FrequencyHz
    max_hz: FrequencyHz


class Islanding(StrictModel):
    """Outage policy: what to keep in reserve, what to shed and when to reconnect."""

    reserve_hours_h: float = Field(
        default=12.0, ge=0, le=240, description="critical load hours to keep stored [h]"
    )
    warned_reserve_hours_h: float = Field(
        default=72.0, ge=0, le=240, description="reserve ahead of a warned outage [h]"
    )
    critical_value_of_lost_load_jpy_per_kwh: ValueOfLostLoadJpyPerKwh = 5000.0
    shed_order: list[ShedTier] = Field(
        default_factory=lambda: [
            ShedTier(tier=3, value_of_lost_load_jpy_per_kwh=100.0),
            ShedTier(tier=2, value_of_lost_load_jpy_per_kwh=200.0),
            ShedTier(tier=1, value_of_lost_load_jpy_per_kwh=400.0),
        ],
        description="sheddable tiers, first shed first",
    )
    reconnect_delay_s: int = Field(default=300, ge=0, le=86400)
    restore_step_delay_s: float = Field(
        default=10.0, ge=0, le=3600,
        description="pause between restoring two shed tiers after reconnection [s]")
    switch_confirm_cycles: int = Field(
        default=2, ge=1, le=20,
        description="control cycles a switch has to show its commanded state in its feedback "
                    "before it counts as failed (and the next tier is shed)")
    voltage_limits: GridLimitsV = GridLimitsV(min_v=182.0, max_v=222.0)
    frequency_limits: GridLimitsHz = GridLimitsHz(min_hz=49.0, max_hz=51.0)

    @model_validator(mode="after")
    def _order_is_coherent(self) -> Islanding:
        tiers = [t.tier for t in self.shed_order]
        if len(set(tiers)) != len(tiers):
            raise ValueError("shed_order lists a tier twice")
        values = [t.value_of_lost_load_jpy_per_kwh for t in self.shed_order]
        if values != sorted(values) or len(set(values)) != len(values):
            raise ValueError("shed_order: value_of_lost_load must increase strictly (first shed first)")
        if values and values[-1] >= self.critical_value_of_lost_load_jpy_per_kwh:
            raise ValueError("critical_value_of_lost_load must exceed every sheddable tier's")
        if self.voltage_limits.min_v >= self.voltage_limits.max_v:
            raise ValueError("voltage_limits: min_v must be below max_v")
        if self.frequency_limits.min_hz >= self.frequency_limits.max_hz:
            raise ValueError("frequency_limits: min_hz must be below max_hz")
        return self


class Control(StrictModel):
    """Control loop timing and solver settings."""

    poll_period_s: float = Field(default=2.0, ge=0.2, le=60)
    plan_step_min: int = Field(default=15, ge=1, le=30, description="must divide 30")
    horizon_h: float = Field(default=24.0, gt=0, le=168)
    replan_period_s: int = Field(default=900, ge=1, le=86400)
    solver_time_limit_s: float = Field(default=5.0, gt=0, le=600)
    mip_gap_pct: float = Field(default=0.5, ge=0, le=50)
    solver_threads: int = Field(default=1, ge=1, le=64)
    setpoint_expiry_s: float = Field(default=30.0, gt=0, le=3600)
    peak_margin_pct: float = Field(
        default=10.0, ge=0, le=100,
        description="members with a demand charge are planned for this much more load than "
        "forecast (beyond the step under way), so that a load above the forecast does not "
        "empty their battery before the peak is over [%]",
    )
    socket_path: Path = Field(
        default=Path("/run/gridctl/gridctl.sock"), description="operator command socket"
    )

    @field_validator("plan_step_min")
    @classmethod
    def _step_divides_period(cls, value: int) -> int:
        if 30 % value != 0:
            raise ValueError(f"plan_step_min ({value}) must divide the 30-minute period")
        return value

    @model_validator(mode="after")
    def _timings_coherent(self) -> Control:
        steps = self.horizon_h * 60 / self.plan_step_min
        if abs(steps - round(steps)) > 1e-9:
            raise ValueError("horizon_h must be a whole number of plan steps")
        if self.replan_period_s < self.poll_period_s:
            raise ValueError("replan_period_s must not be shorter than poll_period_s")
        if self.setpoint_expiry_s <= self.poll_period_s:
            raise ValueError("setpoint_expiry_s must exceed poll_period_s")
        return self


def _no_credentials_in_url(url: str) -> str:
    """Refuse ``user:password@`` and query strings (``?u=...&p=...``); never echo them."""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials must not be in the URL (user:password@): set username and "
                         "password_env (v1) or token_env / a credential (v2)")
    if parts.query or parts.fragment:
        raise ValueError("the URL must not carry a query string or fragment (credentials such as "
                         "u=/p= belong in username and password_env)")
    return url


#: Base URL of an InfluxDB server, without credentials or query string.
InfluxUrl = Annotated[str, Field(pattern=r"^https?://"), AfterValidator(_no_credentials_in_url)]


class InfluxV2(StrictModel):
    """InfluxDB 2.x API (``/api/v2/write``). The token comes from the environment or a credential."""

    model_config = ConfigDict(**StrictModel.model_config, hide_input_in_errors=True)

    version: Literal[2]
    url: InfluxUrl
    org: str = Field(min_length=1)
    bucket: str = Field(min_length=1)
    token_env: str = "GRIDCTL_INFLUXDB_TOKEN"
    token_credential: str = Field(
        default="influxdb-token", description="file name under $CREDENTIALS_DIRECTORY"
    )
    token: Any = Field(default=None, exclude=True, json_schema_extra={"deprecated": True})

    @field_validator("token")
    @classmethod
    def _no_token_in_file(cls, value: Any) -> None:
        if value is not None:
            raise ValueError(
                "the token must not be in the file: set token_env or a systemd credential"
            )
        return None


class InfluxV1(StrictModel):
    """InfluxDB 1.x API (``/write?db=...&rp=...``). The password (with ``username``) comes from a
    credential or the environment, never the file."""

    model_config = ConfigDict(**StrictModel.model_config, hide_input_in_errors=True)

    version: Literal[1]
    url: InfluxUrl
    database: str = Field(min_length=1)
    retention_policy: str | None = None
    username: str | None = None
    password_env: str = "GRIDCTL_INFLUXDB_PASSWORD"
    password_credential: str = Field(
        default="influxdb-password", description="file name under $CREDENTIALS_DIRECTORY"
    )


Influx = Annotated[InfluxV2 | InfluxV1, Field(discriminator="version")]


class Storage(StrictModel):
    """Where settlements and telemetry go. Relative paths resolve from the working directory."""

    ledger_path: Path = Path("gridctl-ledger.sqlite")
    ledger_key_credential: str | None = Field(
        default=None,
        description="systemd credential (file name under $CREDENTIALS_DIRECTORY) holding the key that seals"
                    " the ledger's head (HMAC-SHA256); none: the ledger is not sealed",
    )
    influxdb: Influx | None = None
    telemetry_period_s: float = Field(default=60.0, gt=0, le=3600)
    outbox_batch_size: int = Field(default=5000, ge=1, le=100000)


class Emulation(StrictModel):
    """Settings for ``gridctl emulate`` (the embedded default site on loopback)."""

    certificate_dir: Path = Path("var/pki")

"""The site: its members (nodes), their devices, the router links, tariffs and policies."""

from __future__ import annotations

import zoneinfo
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from gridctl.config.base import (
    AnnualEnergyKwh,
    DemandChargeJpyPerKwMonth,
    Identifier,
    NonNegativePowerKw,
    Percent,
    PowerKw,
    StrictModel,
    VoltageV,
)
from gridctl.config.devices import (
    BatteryDevice,
    Device,
    DeviceProfile,
    MeterDevice,
    PvInverterDevice,
    RouterDevice,
)
from gridctl.config.cityos import CityOs
from gridctl.config.invoice import Invoice
from gridctl.config.policy import Control, Emulation, Islanding, Market, Storage
from gridctl.config.tariffs import Tariff


class SiteInfo(StrictModel):
    """Where the block is and what its grid looks like."""

    id: Identifier
    name: str = Field(min_length=1)
    timezone: str = "Asia/Tokyo"
    latitude_deg: float = Field(ge=-90, le=90)
    longitude_deg: float = Field(ge=-180, le=180)
    altitude_m: float = Field(default=0.0, ge=-500, le=9000)
    nominal_frequency_hz: Literal[50, 60] = 50
    nominal_voltage_v: VoltageV = 202.0

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}'") from None
        return value


class Contract(StrictModel):
    """A member's supply contract."""

    tariff: Identifier = Field(description="import tariff id")
    contract_number: str = Field(default="", description="customer or contract number printed on statements")
    buyback_tariff: Identifier | None = Field(default=None, description="export tariff id")
    contract_amperes_a: int | None = Field(default=None, ge=10, le=60)
    contract_kw: PowerKw | None = Field(default=None, description="for low/high-voltage kW contracts")
    battery_export_allowed: bool = Field(
        default=False, description="battery may discharge to the grid (needs difference metering)"
    )
    demand_charge_jpy_per_kw_month: DemandChargeJpyPerKwMonth = Field(
        default=0.0,
        description="basic charge per kW of contracted demand and month [JPY/kW-month]; the "
        "contracted kW is the highest 30-minute average import over demand_window_months; "
        "0: no demand charge (e.g. a home on an ampere contract)",
    )
    demand_window_months: int = Field(
        default=12, ge=1, le=12,
        description="months over which one 30-minute peak sets the contracted kW (12 for "
        "Japanese high-voltage contracts under 500 kW, 1 for a monthly peak)",
    )

    @model_validator(mode="after")
    def _one_capacity(self) -> Contract:
        if (self.contract_amperes_a is None) == (self.contract_kw is None):
            raise ValueError("give exactly one of contract_amperes_a or contract_kw")
        return self


class LoadSwitch(StrictModel):
    """A switch channel that disconnects the node's sheddable share."""

    device: Identifier = Field(description="a relay_board or switch device of the same node")
    channel: int = Field(default=0, ge=0, le=63, description="channel on the device, from 0")


class LoadSpec(StrictModel):
    """A member's consumption and how it splits into critical and sheddable parts."""

    annual_kwh: AnnualEnergyKwh = Field(description="yearly consumption [kWh]")
    profile: Literal["h25", "convenience_store", "shopping_mall", "office"] = "h25"
    critical_share_pct: Percent = Field(default=15.0, description="share that is never shed [%]")
    shed_tier: int = Field(default=1, ge=1, le=9, description="tier of the non-critical share")
    switches: list[LoadSwitch] = Field(
        default_factory=list,
        description="channels that disconnect the sheddable share (tier shed_tier); empty: the "
                    "node cannot shed by itself")


class GridConnection(StrictModel):
    """The member's connection to the utility grid."""

    import_limit_kw: PowerKw
    export_limit_kw: NonNegativePowerKw


class Node(StrictModel):
    """A member of the P2P market: a home, a shop, the mall."""

    id: Identifier
    name: str = Field(min_length=1)
    member_type: Literal["home", "store", "mall", "community"]
    contract: Contract
    load: LoadSpec
    grid: GridConnection | None = Field(default=None, description="null: fed only through routers")
    devices: list[Device] = Field(default_factory=list)

    def devices_of(self, kind: str) -> list[Device]:
        """Devices of one kind, in file order."""
        return [d for d in self.devices if d.kind == kind]

    @property
    def pv_inverters(self) -> list[PvInverterDevice]:
        return [d for d in self.devices if isinstance(d, PvInverterDevice)]

    @property
    def batteries(self) -> list[BatteryDevice]:
        return [d for d in self.devices if isinstance(d, BatteryDevice)]

    @property
    def meters(self) -> list[MeterDevice]:
        return [d for d in self.devices if isinstance(d, MeterDevice)]

    @property
    def router(self) -> RouterDevice | None:
        routers = [d for d in self.devices if isinstance(d, RouterDevice)]
        return routers[0] if routers else None


class Link(StrictModel):
    """A line between two routers; ``flow_kw > 0`` runs from ``from_router`` to ``to_router``."""

    id: Identifier
    from_router: Identifier
    to_router: Identifier
    capacity_kw: PowerKw
    efficiency_pct: float = Field(default=98.0, gt=0, le=100)


class SiteConfig(StrictModel):
    """A validated, frozen site. Built by :func:`gridctl.config.load_site`."""

    site: SiteInfo
    nodes: list[Node] = Field(min_length=1)
    links: list[Link] = Field(default_factory=list)
    tariffs: list[Tariff] = Field(min_length=1)
    market: Market = Market()
    islanding: Islanding = Islanding()
    control: Control = Control()
    storage: Storage = Storage()
    emulation: Emulation = Emulation()
    cityos: CityOs | None = None
    invoice: Invoice | None = Field(default=None, description="issuer of the members' statements")
    device_profiles_dir: str = Field(
        default="devices", description="folder of device profiles, relative to the site file"
    )
    device_profiles: dict[str, DeviceProfile] = Field(
        default_factory=dict, description="inline profiles; the loader adds configs/devices"
    )

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> SiteConfig:
        if info.context and info.context.get("defer_cross_checks"):
            return self
        from gridctl.config.checks import cross_check

        problems = cross_check(self)
        if problems:
            path, message = problems[0]
            dotted = ".".join(str(p) for p in path)
            raise ValueError(f"{dotted}: {message}")
        return self

    # -- lookups used everywhere ------------------------------------------------------------
    def node(self, node_id: str) -> Node:
        """The node with ``node_id`` (KeyError if absent)."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def all_devices(self) -> list[tuple[Node, Device]]:
        """Every device with its node, in file order."""
        return [(node, device) for node in self.nodes for device in node.devices]

    def routers(self) -> list[tuple[Node, RouterDevice]]:
        """Every router with its node."""
        return [(n, d) for n, d in self.all_devices() if isinstance(d, RouterDevice)]

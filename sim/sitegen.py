"""Valid site files of other shapes than Misono, for tests and benchmarks.

A :class:`BlockShape` says how many homes a block has, whether it has the convenience store and
the mall, how the digital grid routers are linked (chain, ring, star, tree) and which homes lack
PV or a battery. :func:`generate_site` turns it into the YAML text of a complete site file and
the :class:`~gridctl.config.SiteConfig` loaded from that text by the real loader, so every
cross-check runs. Everything else is copied from ``configs/misono.yaml``: the tariffs, market,
islanding and control sections, the device/router/leg/link conventions, and the per-home
variety of Misono's five homes (repeated every five homes). The device profiles are carried
inline, so a written file validates from any folder. Modbus and OPC UA endpoints are unique
loopback ports that the simulator never opens.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gridctl.config import SiteConfig, load_site

__all__ = ["SHAPES", "BlockShape", "Topology", "generate_site", "site_yaml", "topology_edges",
           "write_site"]

Topology = Literal["chain", "tree", "ring", "star"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_MAX_HOMES = 200
_MODBUS_FIRST_PORT = 20000
_OPCUA_FIRST_PORT = 24841
_HOME_ROUTER_KW = 10.0  # Misono's home router rating [kW], raised to link_capacity_kw

#: Misono's five homes, repeated: (annual kWh factor [-], PV offset [kW], contract [A],
#: buyback tariff, shed tier). The factors average 1, so home_annual_kwh is the mean.
_HOME_CYCLE = (
    (1.06, 0.0, 60, "fit-fy2025", 1),
    (1.14, -0.1, 60, "fit-fy2025", 1),
    (0.94, 0.3, 50, "fit-fy2025", 2),
    (0.87, 0.1, 50, "post-fit", 2),
    (0.99, 0.0, 50, "fit-fy2025", 2),
)
#: Battery profile of the n-th home battery in the size cycle (Misono's home 3 is IEEE 1547).
_BATTERY_PROFILES = ("generic-sunspec-battery", "generic-sunspec-battery", "ieee1547-battery",
                     "generic-sunspec-battery")


@dataclass(frozen=True)
class BlockShape:
    """The shape of a generated block; every default copies Misono.

    Attributes
    ----------
    name : str
        Site id, lower-case (also the file name and the ``var/<name>/`` folder).
    topology : {'chain', 'tree', 'ring', 'star'}
        How routers are linked over the members home-1 ... home-N, store, mall, in that order:
        chain = a line; ring = the chain closed (3 or more members); star = every member linked
        to the mall (else home-1); tree = balanced, rooted at the mall (else home-1), the store
        first below it, ``tree_branching`` (2 or 3) children per router.
    homes : int
        Number of homes, 1 to 200; ``store`` and ``mall`` say whether those are members.
    homes_without_pv, homes_without_battery : tuple of int
        1-based numbers of homes with no PV inverter / no battery (nor such a router leg);
        a home without PV sells (battery) energy on post-FIT, not FIT.
    demand_charge_jpy_per_kw_month : float
        Demand charge of the store and mall [JPY/kW-month], 12-month window; homes pay none.
    fit_homes_battery_export_allowed : bool
        ``battery_export_allowed`` of the homes with a battery on the FIT buyback.
    home_annual_kwh, home_pv_kw : float
        Mean yearly consumption of a home [kWh] and its PV rating [kW AC]; Misono's spread
        (annual x0.87 to x1.14, PV -0.1 to +0.3 kW) repeats every five homes.
    home_battery_kwh, home_battery_kw : tuple of float
        Battery capacities [kWh] and charge = discharge limits [kW], cycled over the homes.
    store_* , mall_* : float
        Yearly consumption [kWh], PV [kW AC], battery [kWh] and [kW], contract [kW].
    link_capacity_kw, store_mall_link_capacity_kw : float
        Capacity of a link touching a home [kW], and of the store-mall link [kW].
    """

    name: str
    topology: Topology
    homes: int
    store: bool = True
    mall: bool = True
    tree_branching: int = 2
    homes_without_pv: tuple[int, ...] = ()
    homes_without_battery: tuple[int, ...] = ()
    demand_charge_jpy_per_kw_month: float = 0.0
    fit_homes_battery_export_allowed: bool = False
    home_annual_kwh: float = 4920.0
    home_pv_kw: float = 4.5
    home_battery_kwh: tuple[float, ...] = (9.8, 12.8, 7.0, 5.6)
    home_battery_kw: tuple[float, ...] = (4.0, 5.0, 3.0, 3.0)
    store_annual_kwh: float = 150_000.0
    store_pv_kw: float = 20.0
    store_battery_kwh: float = 30.0
    store_battery_kw: float = 15.0
    store_contract_kw: float = 40.0
    mall_annual_kwh: float = 600_000.0
    mall_pv_kw: float = 120.0
    mall_battery_kwh: float = 250.0
    mall_battery_kw: float = 100.0
    mall_contract_kw: float = 300.0
    link_capacity_kw: float = 10.0
    store_mall_link_capacity_kw: float = 30.0

    def __post_init__(self) -> None:
        problems = []
        if not _NAME.match(self.name):
            problems.append(f"name '{self.name}' must be a lower-case identifier")
        if self.topology not in ("chain", "tree", "ring", "star"):
            problems.append(f"unknown topology '{self.topology}'")
        if not 1 <= self.homes <= _MAX_HOMES:
            problems.append(f"homes must be 1 to {_MAX_HOMES}")
        if self.tree_branching not in (2, 3):
            problems.append("tree_branching must be 2 or 3")
        for field in ("homes_without_pv", "homes_without_battery"):
            if any(not 1 <= k <= self.homes for k in getattr(self, field)):
                problems.append(f"{field} must name homes 1 to {self.homes}")
        sizes = (self.home_battery_kwh, self.home_battery_kw)
        if not sizes[0] or len(sizes[0]) != len(sizes[1]):
            problems.append("home_battery_kwh and home_battery_kw need the same, non-zero length")
        if problems:
            raise ValueError(f"BlockShape '{self.name}': " + "; ".join(problems))

    @property
    def member_ids(self) -> tuple[str, ...]:
        """Node ids in file order: home-1 ... home-N, then store and mall when present."""
        homes = tuple(f"home-{k}" for k in range(1, self.homes + 1))
        return homes + ("store",) * self.store + ("mall",) * self.mall


def topology_edges(shape: BlockShape) -> list[tuple[str, str]]:
    """The router links as (from node, to node) pairs; ``flow_kw > 0`` runs from -> to.

    Parameters
    ----------
    shape : BlockShape
        The block.

    Returns
    -------
    list of tuple of str
        One pair per link: chain/star/tree have ``members - 1``, a ring of 3 or more members
        has ``members`` (the closing link runs from the last member to the first, as Misono's
        ``link-mall-home-1``).
    """
    members = list(shape.member_ids)
    if shape.topology in ("chain", "ring"):
        edges = list(zip(members, members[1:]))
        if shape.topology == "ring" and len(members) >= 3:
            edges.append((members[-1], members[0]))
        return edges
    root = "mall" if shape.mall else "home-1"
    order = [root] + [m for m in members if m == "store"]
    order += [m for m in members if m not in order]
    if shape.topology == "star":
        return [(root, m) for m in order[1:]]
    branching = shape.tree_branching
    return [(order[(k - 1) // branching], order[k]) for k in range(1, len(order))]


@dataclass(frozen=True)
class _Member:
    """One node with every number resolved (internal)."""

    id: str
    name: str
    member_type: str
    contract: dict[str, object]
    load: dict[str, object]
    grid: dict[str, object]
    pv_kw: float | None
    dc_ratio: float
    battery: tuple[float, float, str] | None  # (capacity [kWh], power [kW], profile)
    router_kw: float


def _home(shape: BlockShape, k: int) -> _Member:
    """Home number ``k`` (1-based): Misono's five-home cycle, then the shape's exceptions."""
    factor, pv_offset_kw, amperes, buyback, tier = _HOME_CYCLE[(k - 1) % len(_HOME_CYCLE)]
    pv_kw = None if k in shape.homes_without_pv else round(shape.home_pv_kw + pv_offset_kw, 2)
    battery = None
    if k not in shape.homes_without_battery:
        n = (k - 1) % len(shape.home_battery_kwh)
        battery = (shape.home_battery_kwh[n], shape.home_battery_kw[n],
                   _BATTERY_PROFILES[n % len(_BATTERY_PROFILES)])
    if pv_kw is None:
        buyback = "post-fit"  # no PV, no FIT contract
    exports = bool(battery and buyback == "fit-fy2025" and shape.fit_homes_battery_export_allowed)
    export_kw = max(pv_kw or 0.0, battery[1] if battery and exports else 0.0)
    return _Member(
        id=f"home-{k}", name=f"Home {k}", member_type="home",
        contract={"tariff": "tepco-juryo-b", "buyback_tariff": buyback,
                  "contract_amperes_a": amperes, "battery_export_allowed": exports},
        load={"annual_kwh": round(shape.home_annual_kwh * factor, -1), "profile": "h25",
              "critical_share_pct": 15, "shed_tier": tier},
        grid={"import_limit_kw": amperes / 10, "export_limit_kw": export_kw},
        pv_kw=pv_kw, dc_ratio=1.05, battery=battery,
        router_kw=max(_HOME_ROUTER_KW, shape.link_capacity_kw),
    )


def _business(shape: BlockShape, kind: Literal["store", "mall"]) -> _Member:
    """The store or the mall: business TOU contract [kW], post-FIT, the shape's demand charge."""
    def get(field: str) -> float:
        return float(getattr(shape, f"{kind}_{field}"))

    contract_kw = get("contract_kw")
    return _Member(
        id=kind, name="Convenience store" if kind == "store" else "Shopping mall",
        member_type=kind,
        contract={"tariff": "tepco-business-tou", "buyback_tariff": "post-fit",
                  "contract_kw": contract_kw, "battery_export_allowed": False,
                  "demand_charge_jpy_per_kw_month": shape.demand_charge_jpy_per_kw_month,
                  "demand_window_months": 12},
        load={"annual_kwh": get("annual_kwh"),
              "profile": "convenience_store" if kind == "store" else "shopping_mall",
              "critical_share_pct": 30 if kind == "store" else 10, "shed_tier": 3},
        grid={"import_limit_kw": contract_kw, "export_limit_kw": get("pv_kw")},
        pv_kw=get("pv_kw"), dc_ratio=1.1,
        battery=(get("battery_kwh"), get("battery_kw"), "generic-sunspec-battery"),
        router_kw=contract_kw,
    )


def _num(value: object) -> str:
    """A YAML scalar: booleans lower-case, whole floats without '.0'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _flow(items: dict[str, object]) -> str:
    """A YAML flow mapping ``{key: value, ...}`` of plain ids, numbers and booleans."""
    return "{" + ", ".join(f"{key}: {_num(value)}" for key, value in items.items()) + "}"


def _modbus(port: int) -> str:
    """A device's Modbus protocol block on loopback ``port`` (misono's settings)."""
    return ("        protocol:\n          modbus: "
            + _flow({"host": "127.0.0.1", "port": port, "unit_id": 1, "base_address": 40000,
                     "timeout_s": 1.0}) + "\n")


def _router_yaml(site_id: str, member: _Member, link_legs: list[dict[str, object]],
                 port: int) -> str:
    """The router of ``member``: OPC UA on loopback ``port``; grid, load, pv, battery, links."""
    pki = f"var/{site_id}/pki"
    legs = [{"id": "grid", "kind": "grid", "capacity_kw": member.router_kw},
            {"id": "load", "kind": "node", "capacity_kw": member.router_kw}]
    if member.pv_kw is not None:
        legs.append({"id": "pv", "kind": "pv", "device": f"{member.id}-pv",
                     "capacity_kw": member.pv_kw})
    if member.battery is not None:
        legs.append({"id": "battery", "kind": "battery", "device": f"{member.id}-battery",
                     "capacity_kw": member.battery[1]})
    return (
        f"      - id: {member.id}-dgr\n        kind: router\n        profile: gridctl-dgr\n"
        "        protocol:\n          opcua:\n"
        f"            endpoint_url: opc.tcp://127.0.0.1:{port}/gridctl/router\n"
        "            security_policy: Basic256Sha256\n            security_mode: SignAndEncrypt\n"
        f"            certificate_path: {pki}/gridctl-client-cert.der\n"
        f"            private_key_path: {pki}/gridctl-client-key.pem\n"
        f"            server_certificate_path: {pki}/router-server-cert.der\n"
        "            identity: {kind: x509}\n"
        f"        rating: {_flow({'rated_kw': member.router_kw})}\n        legs:\n"
        + "".join(f"          - {_flow(leg)}\n" for leg in legs + link_legs)
    )


def _node_yaml(site_id: str, member: _Member, link_legs: list[dict[str, object]],
               ports: tuple[int, int]) -> str:
    """One ``nodes[]`` entry; ``ports`` = (first Modbus port, OPC UA port) of this node."""
    modbus_port, opcua_port = ports
    text = (f"  - id: {member.id}\n    name: {member.name}\n    member_type: {member.member_type}\n"
            f"    contract: {_flow(member.contract)}\n    load: {_flow(member.load)}\n"
            f"    grid: {_flow(member.grid)}\n    devices:\n")
    if member.pv_kw is not None:
        rating = {"ac_kw": member.pv_kw, "dc_kwp": round(member.pv_kw * member.dc_ratio, 1),
                  "tilt_deg": 30, "azimuth_deg": 180}
        text += (f"      - id: {member.id}-pv\n        kind: pv_inverter\n"
                 f"        profile: generic-sunspec-inverter\n{_modbus(modbus_port)}"
                 f"        rating: {_flow(rating)}\n")
        modbus_port += 1
    if member.battery is not None:
        capacity_kwh, power_kw, profile = member.battery
        rating = {"capacity_kwh": capacity_kwh, "max_charge_kw": power_kw,
                  "max_discharge_kw": power_kw, "charge_efficiency_pct": 95,
                  "discharge_efficiency_pct": 95, "soc_min_pct": 10, "soc_max_pct": 95,
                  "wear_cost_jpy_per_kwh": 2.0}
        text += (f"      - id: {member.id}-battery\n        kind: battery\n"
                 f"        profile: {profile}\n{_modbus(modbus_port)}"
                 f"        rating: {_flow(rating)}\n")
        modbus_port += 1
    text += (f"      - id: {member.id}-meter\n        kind: meter\n"
             f"        profile: generic-sunspec-meter\n        role: grid\n{_modbus(modbus_port)}")
    return text + _router_yaml(site_id, member, link_legs, opcua_port)


def _link_capacity_kw(shape: BlockShape, a: str, b: str) -> float:
    """Capacity of the link between members ``a`` and ``b`` [kW]."""
    if {a, b} == {"store", "mall"}:
        return shape.store_mall_link_capacity_kw
    return shape.link_capacity_kw


def site_yaml(shape: BlockShape) -> str:
    """The YAML text of the site file of ``shape`` (not yet validated: see generate_site).

    Parameters
    ----------
    shape : BlockShape
        The block.

    Returns
    -------
    str
        A complete site file with inline device profiles.
    """
    edges = topology_edges(shape)
    links = [{"id": f"link-{a}-{b}", "from_router": f"{a}-dgr", "to_router": f"{b}-dgr",
              "capacity_kw": _link_capacity_kw(shape, a, b), "efficiency_pct": 97}
             for a, b in edges]
    members = [_home(shape, k) for k in range(1, shape.homes + 1)]
    members += [_business(shape, kind) for kind in ("store", "mall") if getattr(shape, kind)]
    kind = ("store + mall" if shape.store and shape.mall else
            "store" if shape.store else "mall" if shape.mall else "homes only")
    parts = [_SECTIONS.format(id=shape.name, homes=shape.homes, topology=shape.topology,
                              kind=kind, profiles=_PROFILES)]
    modbus_port = _MODBUS_FIRST_PORT
    for n, member in enumerate(members):
        legs = [{"id": f"to-{b if a == member.id else a}", "kind": "link",
                 "link": link["id"], "capacity_kw": link["capacity_kw"]}
                for (a, b), link in zip(edges, links) if member.id in (a, b)]
        parts.append(_node_yaml(shape.name, member, legs, (modbus_port, _OPCUA_FIRST_PORT + n)))
        modbus_port += 1 + (member.pv_kw is not None) + (member.battery is not None)
    if links:
        parts.append("\nlinks:                  # flow_kw > 0 runs from_router -> to_router\n")
        parts.extend(f"  - {_flow(link)}\n" for link in links)
    return "".join(parts)


def generate_site(shape: BlockShape) -> tuple[str, SiteConfig]:
    """The site file of ``shape`` and the site the real loader makes of it.

    Returns
    -------
    tuple of (str, SiteConfig)
        The YAML text and the validated, frozen site (every cross-check has run).

    Raises
    ------
    gridctl.config.ConfigError
        If the generated text does not validate (a bug here, never expected).
    """
    text = site_yaml(shape)
    with tempfile.TemporaryDirectory(prefix="gridctl-sitegen-") as folder:
        path = Path(folder) / f"{shape.name}.yaml"
        path.write_text(text, encoding="utf-8")
        return text, load_site(path)


def write_site(shape: BlockShape, folder: Path) -> Path:
    """Validate the site of ``shape`` and write it to ``folder/<name>.yaml`` (folder created).

    Returns
    -------
    Path
        The written file; ``gridctl config validate`` accepts it from any folder.
    """
    text, _ = generate_site(shape)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{shape.name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


#: The shapes the decision-quality benchmark runs (modest sizes: days of 15-min re-plans each).
SHAPES: dict[str, BlockShape] = {shape.name: shape for shape in (
    # 12 homes, store, mall in a line; homes 3, 8 without PV, home 5 without battery; demand
    # charge 1800 JPY/kW-month on store and mall (peak shaving matters)
    BlockShape("chain12", "chain", 12, homes_without_pv=(3, 8), homes_without_battery=(5,),
               demand_charge_jpy_per_kw_month=1800.0),
    # the same block without a demand charge (energy arbitrage and P2P only)
    BlockShape("chain12-nodemand", "chain", 12, homes_without_pv=(3, 8),
               homes_without_battery=(5,)),
    # 9 homes, store, mall in a ternary tree under the mall; homes 2, 7 without PV, homes 4, 7,
    # 9 without battery (home 7 has neither); demand charge 1800 JPY/kW-month
    BlockShape("tree9", "tree", 9, tree_branching=3, homes_without_pv=(2, 7),
               homes_without_battery=(4, 7, 9), demand_charge_jpy_per_kw_month=1800.0),
    # 6 homes only, all linked to home 1; home 6 without battery
    BlockShape("star6-homes-only", "star", 6, store=False, mall=False,
               homes_without_battery=(6,)),
    # 4 homes and the store in a ring; homes 2, 4 without battery, home 3 without PV
    BlockShape("ring4-nobattery", "ring", 4, mall=False, homes_without_pv=(3,),
               homes_without_battery=(2, 4)),
)}

_PROFILES = """\
  generic-sunspec-inverter:
    {id: generic-sunspec-inverter, vendor: Generic SunSpec, kind: pv_inverter,
     description: "Single-phase PV inverter, models 1/101/120/123, WMaxLimPct with revert timer",
     protocol: modbus_sunspec, models_expected: [1, 101, 120, 123], control_models: [123],
     revert_timeout_s: 60, signs: {power: false, energy_counters: false},
     quirks: {inter_request_delay_s: 0.0, max_registers_per_read: 125, single_client: false}}
  generic-sunspec-battery:
    {id: generic-sunspec-battery, vendor: Generic SunSpec, kind: battery,
     description: "Battery with models 1/802/124, CtrlHb heartbeat and InOutWRte revert timer",
     protocol: modbus_sunspec, models_expected: [1, 124, 802], control_models: [124, 802],
     revert_timeout_s: 60, signs: {power: false, energy_counters: false},
     quirks: {inter_request_delay_s: 0.0, max_registers_per_read: 125, single_client: false}}
  ieee1547-battery:
    {id: ieee1547-battery, vendor: Generic IEEE 1547, kind: battery,
     description: "Battery inverter with models 1/701/704/713, charge-positive power",
     protocol: modbus_sunspec, models_expected: [1, 701, 704, 713], control_models: [704],
     revert_timeout_s: 60, signs: {power: true, energy_counters: false},
     quirks: {inter_request_delay_s: 0.02, max_registers_per_read: 100, single_client: true}}
  generic-sunspec-meter:
    {id: generic-sunspec-meter, vendor: Generic SunSpec, kind: meter,
     description: "Grid meter with models 1/203, cumulative import and export Wh",
     protocol: modbus_sunspec, models_expected: [1, 203], control_models: [],
     signs: {power: false, energy_counters: false}}
  gridctl-dgr:
    {id: gridctl-dgr, vendor: gridctl, kind: router, protocol: opcua_router, revert_timeout_s: 30,
     description: "Digital grid router, gridctl OPC UA information model v1, heartbeat fail-safe"}
  generic-modbus-relay-8:
    {id: generic-modbus-relay-8, vendor: Generic Modbus, kind: relay_board, protocol: modbus_relay,
     description: "8-channel Modbus TCP relay board with contactor feedback inputs and a watchdog",
     revert_timeout_s: 30,
     relay: {channels: 8, coil_base: 0, discrete_input_base: 0, watchdog_register: 100,
             watchdog_unit_s: 1.0, watchdog_timeout_s: 30, energised_means: disconnect,
             power_on_energised: false}}
"""

# Tariffs, market, islanding and control as in configs/misono.yaml (a test compares them).
_SECTIONS = """\
# gridctl site generated by sim/sitegen.py: {homes} home(s), {kind}, routers in a {topology}.
# Tariffs, market, islanding and control copy configs/misono.yaml. Endpoints are loopback ports
# that nothing listens on. Sign convention: supply-positive (grid_kw > 0 imports).

site: {{id: {id}, name: Generated block {id}, timezone: Asia/Tokyo, latitude_deg: 35.8845,
       longitude_deg: 139.7237, altitude_m: 10, nominal_frequency_hz: 50, nominal_voltage_v: 202}}

device_profiles:                    # inline, so the file validates from any folder
{profiles}
tariffs:
  - id: tepco-juryo-b
    kind: import
    name: TEPCO Juryo-Dento B (metered lighting B)
    version: "2025-04"
    valid_from: 2025-04-01
    basic_charge_jpy_per_10a_month: "311.75"
    energy_tiers:
      - {{up_to_kwh: 120, price_jpy_per_kwh: "29.80"}}
      - {{up_to_kwh: 300, price_jpy_per_kwh: "36.40"}}
      - {{up_to_kwh: null, price_jpy_per_kwh: "40.49"}}
    renewable_surcharge_jpy_per_kwh: "3.98"
    fuel_cost_adjustment_jpy_per_kwh: "-1.50"
    fuel_cost_adjustment_by_month: {{"2026-08": "-1.70", "2026-09": "-1.60"}}
    consumption_tax_pct: "10"
    prices_include_tax: true
    rounding: {{kwh_decimals: 0, kwh_mode: half_up, yen_mode: floor, tax_mode: floor}}
  - id: tepco-business-tou
    kind: import
    name: Low-voltage business time-of-use plan [?]
    version: "2025-04"
    valid_from: 2025-04-01
    basic_charge_jpy_per_month: "1716.00"
    time_of_use:
      - {{days: weekday, start: "09:00", end: "21:00", price_jpy_per_kwh: "34.20"}}
      - {{days: weekday, start: "21:00", end: "09:00", price_jpy_per_kwh: "27.10"}}
      - {{days: weekend_holiday, start: "00:00", end: "00:00", price_jpy_per_kwh: "27.10"}}
    renewable_surcharge_jpy_per_kwh: "3.98"
    fuel_cost_adjustment_jpy_per_kwh: "-1.50"
    consumption_tax_pct: "10"
  - {{id: fit-fy2025, kind: export, scheme: fit, name: "Residential FIT, FY2025 first half",
     version: "FY2025H1", valid_from: 2025-04-01, price_jpy_per_kwh: "15.00"}}
  - {{id: post-fit, kind: export, scheme: post_fit, name: TEPCO standard post-FIT buy-back,
     version: "2025-04", valid_from: 2025-04-01, price_jpy_per_kwh: "8.50"}}

market: {{mechanism: sdr, platform_fee_jpy_per_kwh: "0.50", grace_period_s: 120,
         auction: {{price_floor_jpy_per_kwh: "0", price_cap_jpy_per_kwh: "50"}}}}

islanding:
  reserve_hours_h: 12
  warned_reserve_hours_h: 72
  critical_value_of_lost_load_jpy_per_kwh: 5000
  shed_order:                       # first shed first
    - {{tier: 3, value_of_lost_load_jpy_per_kwh: 80}}
    - {{tier: 2, value_of_lost_load_jpy_per_kwh: 150}}
    - {{tier: 1, value_of_lost_load_jpy_per_kwh: 400}}
  reconnect_delay_s: 300
  voltage_limits: {{min_v: 182, max_v: 222}}
  frequency_limits: {{min_hz: 49.5, max_hz: 50.5}}

control: {{poll_period_s: 2, plan_step_min: 15, horizon_h: 24, replan_period_s: 300,
          solver_time_limit_s: 5, mip_gap_pct: 0.5, solver_threads: 1, setpoint_expiry_s: 30,
          socket_path: var/{id}/gridctl.sock}}
storage: {{ledger_path: var/{id}/ledger.sqlite, telemetry_period_s: 60}}
emulation: {{certificate_dir: var/{id}/pki}}

nodes:
"""

"""Turn one poll of device readings into the controller's :class:`Snapshot` (pure).

Readings arrive per device id as :class:`drivers.capabilities.DeviceReading` (or None when
the device did not answer). Sign convention is already supply-positive in the drivers; a
router leg's power is positive into the router, so a link's ``flow_kw`` (positive from
``from_router`` to ``to_router``) is minus the leg power at the from-router, or the leg power
at the to-router when only that side answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from drivers.capabilities import DeviceReading, EnergyCounters, FixedPointCounters, LegReading
from gridctl.config import SiteConfig
from gridctl.config.site import Node
from gridctl.controller.switches import SwitchReading
from gridctl.controller.topology import site_index
from gridctl.controller.types import DeviceHealth, NodeReading, Snapshot
from gridctl.settlement.model import GRID_CHANNEL, PV_CHANNEL


@dataclass(frozen=True)
class CounterSample:
    """One cumulative counter pair read in a poll, named as the settlement names channels.

    Attributes
    ----------
    member_id : str
        Node whose meter or router leg this is.
    channel : str
        ``grid`` (grid meter, else the router's grid leg), ``link:<link id>`` (router leg) or
        ``pv`` (the node's PV inverters, summed).
    import_kwh, export_kwh : float or None
        Cumulative kWh into / out of the member (supply-positive ``supplied`` / ``absorbed``);
        for ``pv`` the produced energy, and 0 out.
    fixed_at_utc : datetime or None
        Set for a smart meter's fixed 30-minute counters: the fixed point they belong to
        (tz-aware). None for a live sample, taken at the poll.
    """

    member_id: str
    channel: str
    import_kwh: float | None
    export_kwh: float | None
    fixed_at_utc: datetime | None = None

    @property
    def key(self) -> str:
        return f"{self.member_id}|{self.channel}"


def _leg(reading: DeviceReading, leg_id: str, kind: str) -> LegReading | None:
    """A router leg by configured id, else by the information model's kind name."""
    return reading.legs.get(leg_id) or reading.legs.get(kind)


def _sum(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known and len(known) == len(values) else None


def _node_reading(node: Node, readings: Mapping[str, DeviceReading | None]) -> NodeReading:
    def ok(device_id: str) -> DeviceReading | None:
        return readings.get(device_id)

    pv = _sum([(r.ac_power_kw if (r := ok(d.id)) else None) for d in node.pv_inverters])
    bats = [ok(d.id) for d in node.batteries]
    battery_kw = _sum([r.ac_power_kw if r else None for r in bats])
    soc = bats[0].soc_pct if len(bats) == 1 and bats[0] else None
    grid_meters = [m for m in node.meters if m.role == "grid"]
    grid_kw = _sum([(r.ac_power_kw if (r := ok(m.id)) else None) for m in grid_meters])
    grid_import_kwh = _sum([(r.counters.supplied_kwh if (r := ok(m.id)) and r.counters else None)
                            for m in grid_meters]) if grid_meters else None
    load_kw = grid_available = voltage = frequency = None
    router = node.router
    rr = ok(router.id) if router else None
    if router is not None and rr is not None:
        for leg in router.legs:
            lr = _leg(rr, leg.id, leg.kind)
            if lr is None or lr.power_kw is None:
                continue
            if leg.kind == "node":
                load_kw = max(0.0, -lr.power_kw)  # the load draws out of the router
            elif leg.kind == "grid":
                grid_kw = lr.power_kw if grid_kw is None else grid_kw
                if not grid_meters:  # one counter source per node, or deltas mean nothing
                    grid_import_kwh = lr.counters.supplied_kwh if lr.counters else None
        if rr.grid is not None:
            grid_available = rr.grid.connected
            voltage, frequency = rr.grid.voltage_v, rr.grid.frequency_hz
    if load_kw is None and router is None and None not in (pv, grid_kw):
        load_kw = max(0.0, (pv or 0.0) + (grid_kw or 0.0) + (battery_kw or 0.0))
    return NodeReading(
        pv_kw=None if pv is None else max(0.0, pv), load_kw=load_kw, grid_kw=grid_kw,
        battery_kw=battery_kw, soc_pct=soc, grid_available=grid_available,
        grid_voltage_v=voltage, grid_frequency_hz=frequency, grid_import_kwh=grid_import_kwh)


def _link_leg_kw(reading: DeviceReading | None, leg_id: str) -> float | None:
    """Power of a router's link leg [kW], positive into the router (None: not read)."""
    lr = _leg(reading, leg_id, "link") if reading is not None else None
    return None if lr is None else lr.power_kw


def _link_flows(site: SiteConfig, readings: Mapping[str, DeviceReading | None]) -> dict[str, float | None]:
    flows: dict[str, float | None] = {}
    for link in site_index(site).links:
        sent = _link_leg_kw(readings.get(link.from_router), link.from_leg)
        if sent is not None:
            flows[link.link_id] = -sent  # measured at the sending end: preferred
        else:
            flows[link.link_id] = _link_leg_kw(readings.get(link.to_router), link.to_leg)
    return flows


def build_snapshot(site: SiteConfig, readings: Mapping[str, DeviceReading | None],
                   faults: Mapping[str, str | None], at_utc: datetime) -> Snapshot:
    """Assemble the block snapshot of one poll.

    Parameters
    ----------
    site : SiteConfig
    readings : Mapping[str, DeviceReading or None]
        Per device id; None (or absent) when the device gave no reading this poll.
    faults : Mapping[str, str or None]
        Per device id, the fault of this poll (None when healthy).
    at_utc : datetime
        Time stamp of the poll (tz-aware).
    """
    ok = {d.id: readings.get(d.id) for _n, d in site.all_devices() if faults.get(d.id) is None}
    nodes = {node.id: _node_reading(node, ok) for node in site.nodes}
    health = {d.id: DeviceHealth(ok=faults.get(d.id) is None and ok.get(d.id) is not None,
                                 fault=faults.get(d.id) or (None if ok.get(d.id) else "no reading"))
              for _n, d in site.all_devices()}
    switches = {device_id: tuple(SwitchReading(sw.channel, sw.commanded_on, sw.feedback_on)
                                 for sw in reading.switches)
                for device_id, reading in ok.items() if reading is not None and reading.switches}
    return Snapshot(at_utc=at_utc, nodes=nodes, link_flow_kw=_link_flows(site, ok), devices=health,
                    switches=switches)


def counter_samples(site: SiteConfig, readings: Mapping[str, DeviceReading | None]) -> list[CounterSample]:
    """Cumulative counters of grid meters, router legs and PV inverters read in this poll."""
    samples: list[CounterSample] = []
    for node in site.nodes:
        if node.pv_inverters:
            samples.append(_pv_sample(node, readings))
        grid_meter = next((m for m in node.meters if m.role == "grid"), None)
        grid_reading = readings.get(grid_meter.id) if grid_meter else None
        if grid_reading is not None and grid_reading.counters is not None:
            samples.append(_sample(node.id, "grid", grid_reading.counters))
        if grid_reading is not None and grid_reading.fixed_counters is not None:
            samples.append(_fixed_sample(node.id, grid_reading.fixed_counters))
        router = node.router
        reading = readings.get(router.id) if router else None
        if router is None or reading is None:
            continue
        for leg in router.legs:
            lr = _leg(reading, leg.id, leg.kind)
            if lr is None:
                continue
            if leg.kind == "link":
                samples.append(_sample(node.id, f"link:{leg.link}", lr.counters))
            elif leg.kind == "grid" and grid_meter is None:
                samples.append(_sample(node.id, "grid", lr.counters))
    return [s for s in samples if s.import_kwh is not None or s.export_kwh is not None]


def _pv_sample(node: Node, readings: Mapping[str, DeviceReading | None]) -> CounterSample:
    """The node's PV production counter: the sum of its inverters' lifetime energy (SunSpec
    ``WH``) [kWh], None unless every inverter reported one in this poll (a partial sum would
    make a false difference)."""
    produced = _sum([(r.counters.supplied_kwh if (r := readings.get(d.id)) and r.counters else None)
                     for d in node.pv_inverters])
    return CounterSample(node.id, PV_CHANNEL, produced, None if produced is None else 0.0)


def pv_channels(site: SiteConfig) -> list[tuple[str, str]]:
    """The ``(member_id, "pv")`` channel of every node with PV inverters, in file order.

    Recorded with each period when read, but never waited for: settlement does not use them.
    """
    return [(node.id, PV_CHANNEL) for node in site.nodes if node.pv_inverters]


def _sample(member_id: str, channel: str, counters: EnergyCounters) -> CounterSample:
    return CounterSample(member_id, channel, counters.supplied_kwh, counters.absorbed_kwh)


def _fixed_sample(member_id: str, fixed: FixedPointCounters) -> CounterSample:
    return CounterSample(member_id, GRID_CHANNEL, fixed.supplied_kwh, fixed.absorbed_kwh,
                         fixed_at_utc=fixed.at_utc)


def expected_channels(site: SiteConfig) -> list[tuple[str, str]]:
    """Every (member_id, channel) the site meters, in file order (what a period must settle)."""
    out: list[tuple[str, str]] = []
    for node in site.nodes:
        router = node.router
        has_grid_meter = any(m.role == "grid" for m in node.meters)
        if has_grid_meter or (router and any(leg.kind == "grid" for leg in router.legs)):
            out.append((node.id, "grid"))
        if router is not None:
            out.extend((node.id, f"link:{leg.link}") for leg in router.legs if leg.kind == "link")
    return out

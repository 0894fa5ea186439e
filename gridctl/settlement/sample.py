"""A deterministic, physically coherent month of settlement readings for a site.

For tests, demos and the clerks' walkthrough when no recorded data exists. Each member gets a
clear-sky-shaped PV output scaled by its inverter rating and a daily weather factor, and a load
from its annual consumption; surplus flows to the neighbour on each router link (with the link
efficiency as the metered loss), the rest is exchanged with the grid. Counters are cumulative
and rounded to the watt-hour like a meter's.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from decimal import Decimal
from zoneinfo import ZoneInfo

from gridctl.config.site import SiteConfig
from gridctl.settlement.model import GRID_CHANNEL, link_channel

PERIOD = dt.timedelta(minutes=30)
WH = Decimal("0.001")
Row = tuple[dt.datetime, str, str, Decimal, Decimal]


def _pv_shape(local: dt.datetime) -> float:
    hour = local.hour + local.minute / 60 + 0.25  # mid-period
    return max(0.0, math.sin(math.pi * (hour - 6.0) / 12.0)) if 6.0 < hour < 18.0 else 0.0


def _load_shape(local: dt.datetime) -> float:
    hour = local.hour + local.minute / 60
    return 0.7 + 0.5 * math.exp(-((hour - 8) ** 2) / 4) + 0.8 * math.exp(-((hour - 19.5) ** 2) / 6)


def sample_month(site: SiteConfig, year: int, month: int, seed: int = 1) -> list[Row]:
    """Boundary counters for every period of local month ``year-month``.

    Returns rows ``(timestamp_utc, member_id, channel, import_kwh, export_kwh)`` for every
    boundary from the first local midnight of the month to the first of the next, inclusive.
    """
    zone = ZoneInfo(site.site.timezone)
    start = dt.datetime(year, month, 1, tzinfo=zone)
    end = dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=zone)
    rng = random.Random(seed)
    owners = {router.id: node.id for node, router in site.routers()}
    counters = {(n.id, GRID_CHANNEL): [Decimal(1000), Decimal(100)] for n in site.nodes}
    for link in site.links:
        counters[(owners[link.from_router], link_channel(link.id))] = [Decimal(0), Decimal(0)]
        counters[(owners[link.to_router], link_channel(link.id))] = [Decimal(0), Decimal(0)]
    rows: list[Row] = []
    t = start.astimezone(dt.timezone.utc)
    weather = 1.0
    while True:
        rows.extend((t, m, c, v[0], v[1]) for (m, c), v in sorted(counters.items()))
        if t >= end:
            return rows
        local = t.astimezone(zone)
        if local.hour == 0 and local.minute == 0:
            weather = rng.uniform(0.2, 1.0)
        _advance(site, owners, counters, local, weather, rng)
        t += PERIOD


def _advance(
    site: SiteConfig, owners: dict[str, str], counters: dict, local: dt.datetime,
    weather: float, rng: random.Random,
) -> None:
    surplus: dict[str, Decimal] = {}
    for node in site.nodes:
        pv_kw = sum(inv.rating.ac_kw for inv in node.pv_inverters) * _pv_shape(local) * weather
        load_kw = node.load.annual_kwh / 8760 * _load_shape(local) * rng.uniform(0.8, 1.2)
        surplus[node.id] = Decimal(str(round((pv_kw - load_kw) * 0.5, 3)))
    for link in site.links:
        a, b = owners[link.from_router], owners[link.to_router]
        eff = Decimal(str(link.efficiency_pct)) / 100
        cap_kwh = Decimal(str(link.capacity_kw * 0.5))
        for src, dst in ((a, b), (b, a)):
            if surplus[src] > 0 and surplus[dst] < 0:
                sent = min(surplus[src], -surplus[dst] / eff, cap_kwh).quantize(WH)
                got = (sent * eff).quantize(WH)
                counters[(src, link_channel(link.id))][1] += sent
                counters[(dst, link_channel(link.id))][0] += got
                surplus[src] -= sent
                surplus[dst] += got
    for member_id, rest in surplus.items():
        counters[(member_id, GRID_CHANNEL)][0 if rest < 0 else 1] += abs(rest)

"""When a period may be settled: at its end if every reading is in, else after the grace time."""

from __future__ import annotations

import datetime as dt

from gridctl.config.metering import has_fixed_point_meter
from gridctl.config.site import SiteConfig
from gridctl.settlement.model import GRID_CHANNEL, PeriodReadings, link_channel


def expected_channels(site: SiteConfig) -> set[tuple[str, str]]:
    """Every ``(member_id, channel)`` a complete period of ``site`` has."""
    owners = {router.id: node.id for node, router in site.routers()}
    channels = {(n.id, GRID_CHANNEL) for n in site.nodes if n.grid is not None}
    for link in site.links:
        channels.add((owners[link.from_router], link_channel(link.id)))
        channels.add((owners[link.to_router], link_channel(link.id)))
    return channels


def fixed_point_channels(site: SiteConfig) -> list[tuple[str, str]]:
    """The ``(member_id, "grid")`` channels whose grid meter keeps fixed 30-minute counters,
    in file order: their boundaries are read from the meter's fixed points, not live."""
    return [(n.id, GRID_CHANNEL) for n in site.nodes if has_fixed_point_meter(site, n)]


def is_complete(site: SiteConfig, readings: PeriodReadings) -> bool:
    """Every expected channel has all four counters."""
    have = {(c.member_id, c.channel) for c in readings.channels if c.complete}
    return expected_channels(site) <= have


def is_due(site: SiteConfig, readings: PeriodReadings, now_utc: dt.datetime) -> bool:
    """Whether the period should be settled at ``now_utc``.

    A complete period is due at its end; an incomplete one waits ``market.grace_period_s`` [s]
    for late counters and is then settled from what exists (and flagged by the settlement).
    """
    if now_utc < readings.end_utc:
        return False
    if is_complete(site, readings):
        return True
    return now_utc >= readings.end_utc + dt.timedelta(seconds=site.market.grace_period_s)

"""The one builder of the city feed: block aggregates per 30-minute period as Smart Data Models.

Entities (FIWARE Smart Data Models, schemas vendored in ``schemas/``):

- ``EnergyCommunity`` (dataModel.EnergyCommunity): the block, one entity.
- ``ACMeasurement`` (dataModel.Energy) per period: the block's exchange with the utility grid,
  ``totalActiveEnergyImport`` / ``totalActiveEnergyExport`` [kWh] over ``[dateObservedFrom,
  dateObservedTo)``.
- ``GreenEnergyMeasurement`` (dataModel.GreenEnergy) per period with PV data: the block's PV
  production as ``solarPowerGenerated``, the average power over the period [kW, ``KWT``]
  (the model has no energy attribute and no ``dateObserved``: the period is in the id, and in
  the normalized form in ``observedAt``, its end).
- With ``cityos.per_member`` only: an ``ACMeasurement`` per member and period at its grid meter,
  and a ``GreenEnergyMeasurement`` per member with PV, under a pseudonymous id, located at the
  block (never at the home).

Pure: no clock, file or network. Rendering to key-values or normalized form is
:mod:`gridctl.cityos.render`.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from gridctl.cityos.model import Attribute, AttributeKind, Entity, MemberExchange, PeriodAggregate
from gridctl.config import SiteConfig

#: UN/CEFACT common codes of kilowatt-hour and kilowatt.
KWH = "KWH"
KWT = "KWT"
#: Who made the data (``dataProvider``).
DATA_PROVIDER = "gridctl"
#: ``phaseType`` of a member's grid connection: Japanese homes have single-phase three-wire
#: service; shops and malls three-phase. The block as a whole includes three-phase members.
PHASE_TYPES = {"home": "singlePhase", "store": "threePhase", "mall": "threePhase", "community": "threePhase"}


@dataclass(frozen=True)
class FeedSite:
    """What the builder needs to know of the site (made by :func:`feed_site`).

    ``latitude_deg`` / ``longitude_deg`` [degrees, WGS 84] place every entity at the block.
    """

    site_id: str
    name: str
    timezone: str
    latitude_deg: float
    longitude_deg: float
    member_count: int
    entity_id_prefix: str
    per_member: bool


def feed_site(site: SiteConfig) -> FeedSite:
    """The feed's view of a validated site (``cityos`` defaults when the section is absent)."""
    prefix = site.cityos.entity_id_prefix if site.cityos else "urn:ngsi-ld:"
    per_member = site.cityos.per_member if site.cityos else False
    return FeedSite(site.site.id, site.site.name, site.site.timezone, site.site.latitude_deg,
                    site.site.longitude_deg, len(site.nodes), prefix, per_member)


def build_entities(feed: FeedSite, periods: Sequence[PeriodAggregate],
                   pseudonym: Callable[[str], str] | None = None) -> list[Entity]:
    """The community entity, then each period's block measurement (and members' with the opt-in).

    Raises
    ------
    ValueError
        ``feed.per_member`` without a ``pseudonym`` function: member ids are never published.
    """
    if feed.per_member and pseudonym is None:
        raise ValueError("per-member publication needs a pseudonym key")
    entities = [community_entity(feed)]
    for period in periods:
        entities.append(block_measurement(feed, period))
        if period.pv_kwh is not None:
            entities.append(block_pv_measurement(feed, period))
        if feed.per_member:
            entities.extend(member_measurement(feed, period, m, pseudonym(m.member_id))  # type: ignore[misc]
                            for m in period.members)
            entities.extend(member_pv_measurement(feed, period, m, pseudonym(m.member_id))  # type: ignore[misc]
                            for m in period.members if m.pv_kwh is not None)
    return entities


def community_entity(feed: FeedSite) -> Entity:
    """The block as an ``EnergyCommunity``."""
    return Entity(
        id=f"{feed.entity_id_prefix}EnergyCommunity:{feed.site_id}",
        type="EnergyCommunity",
        attributes=(
            Attribute("name", feed.name),
            Attribute("description", f"Neighbourhood microgrid of {feed.member_count} members sharing PV "
                                     "peer to peer; 30-minute aggregates published as ACMeasurement (grid "
                                     "exchange) and GreenEnergyMeasurement (PV production)"),
            Attribute("communityType", "PeerToPeerMicrogrid"),
            Attribute("dataProvider", DATA_PROVIDER),
            _location(feed),
        ),
    )


def block_measurement(feed: FeedSite, period: PeriodAggregate) -> Entity:
    """The block's exchange with the utility grid in one period."""
    stamp = _period_stamp(feed, period.start_utc)
    return _measurement(
        feed, f"{feed.entity_id_prefix}ACMeasurement:{feed.site_id}:block:{stamp}", "threePhase", period,
        float(period.grid_import_kwh), float(period.grid_export_kwh),
        f"Grid exchange of {feed.name} with the utility grid",
    )


def member_measurement(feed: FeedSite, period: PeriodAggregate, member: MemberExchange,
                       pseudonym: str) -> Entity:
    """One member's grid exchange in one period, under its pseudonym (opt-in only)."""
    stamp = _period_stamp(feed, period.start_utc)
    return _measurement(
        feed, f"{feed.entity_id_prefix}ACMeasurement:{feed.site_id}:member-{pseudonym}:{stamp}",
        PHASE_TYPES[member.member_type], period,
        float(member.grid_import_kwh), float(member.grid_export_kwh),
        f"Grid exchange of a member ({member.member_type}) of {feed.name}",
    )


def block_pv_measurement(feed: FeedSite, period: PeriodAggregate) -> Entity:
    """The block's PV production in one period (``period.pv_kwh`` must be known)."""
    assert period.pv_kwh is not None
    stamp = _period_stamp(feed, period.start_utc)
    return _pv_measurement(feed, f"{feed.entity_id_prefix}GreenEnergyMeasurement:{feed.site_id}:block:{stamp}",
                           period, period.pv_kwh, f"PV production of {feed.name}")


def member_pv_measurement(feed: FeedSite, period: PeriodAggregate, member: MemberExchange,
                          pseudonym: str) -> Entity:
    """One member's PV production in one period, under its pseudonym (opt-in only)."""
    assert member.pv_kwh is not None
    stamp = _period_stamp(feed, period.start_utc)
    return _pv_measurement(
        feed, f"{feed.entity_id_prefix}GreenEnergyMeasurement:{feed.site_id}:member-{pseudonym}:{stamp}",
        period, member.pv_kwh, f"PV production of a member ({member.member_type}) of {feed.name}")


def average_kw(energy_kwh: Decimal, start_utc: dt.datetime, end_utc: dt.datetime) -> float:
    """Average power [kW] of ``energy_kwh`` [kWh] delivered over ``[start, end)``."""
    hours = Decimal((end_utc - start_utc).total_seconds()) / Decimal(3600)
    return float(energy_kwh / hours)


def _pv_measurement(feed: FeedSite, entity_id: str, period: PeriodAggregate, pv_kwh: Decimal,
                    name: str) -> Entity:
    end = period.end_utc
    return Entity(
        id=entity_id,
        type="GreenEnergyMeasurement",
        attributes=(
            Attribute("name", name),
            Attribute("description", f"Average PV power over the 30-minute period from "
                                     f"{_utc(period.start_utc)} to {_utc(end)}, from the PV "
                                     "inverters' energy counters"),
            Attribute("dataProvider", DATA_PROVIDER),
            _location(feed),
            Attribute("solarPowerGenerated", average_kw(pv_kwh, period.start_utc, end),
                      unit_code=KWT, observed_at=end),
        ),
    )


def _measurement(feed: FeedSite, entity_id: str, phase_type: str, period: PeriodAggregate,
                 import_kwh: float, export_kwh: float, name: str) -> Entity:
    end = period.end_utc
    return Entity(
        id=entity_id,
        type="ACMeasurement",
        attributes=(
            Attribute("name", name),
            Attribute("dataProvider", DATA_PROVIDER),
            _location(feed),
            Attribute("phaseType", phase_type),
            Attribute("dateObserved", _utc(end)),
            Attribute("dateObservedFrom", _utc(period.start_utc)),
            Attribute("dateObservedTo", _utc(end)),
            Attribute("totalActiveEnergyImport", import_kwh, unit_code=KWH, observed_at=end),
            Attribute("totalActiveEnergyExport", export_kwh, unit_code=KWH, observed_at=end),
        ),
    )


def _location(feed: FeedSite) -> Attribute:
    point = {"type": "Point", "coordinates": [feed.longitude_deg, feed.latitude_deg]}
    return Attribute("location", point, AttributeKind.GEO_PROPERTY)


def _period_stamp(feed: FeedSite, start_utc: dt.datetime) -> str:
    """The period start in the site's time zone, ``2026-08-01T09:30+09:00``: what an id names."""
    return start_utc.astimezone(zoneinfo.ZoneInfo(feed.timezone)).isoformat(timespec="minutes")


def _utc(stamp: dt.datetime) -> str:
    """ISO 8601 UTC with a ``Z``, as the Smart Data Models write ``dateObserved``."""
    return stamp.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

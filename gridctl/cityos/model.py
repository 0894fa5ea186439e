"""Typed values of the city feed: what a 30-minute period contributes, and NGSI-LD entities.

An :class:`Entity` is form-free: :func:`gridctl.cityos.render.key_values` and
:func:`gridctl.cityos.render.normalized` render the same entity in either NGSI-LD form.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from decimal import Decimal

from gridctl.settlement.model import PV_CHANNEL, PeriodReadings, PeriodSettlement


@dataclass(frozen=True)
class MemberExchange:
    """One member's exchange with the utility grid in a period, at its grid meter.

    Attributes
    ----------
    member_id : str
        The site file's node id: never published (a pseudonym is, with the opt-in).
    member_type : str
        ``home``, ``store``, ``mall`` or ``community``.
    grid_import_kwh, grid_export_kwh : Decimal
        Energy drawn from / fed into the utility grid [kWh, >= 0].
    pv_kwh : Decimal or None
        PV energy produced in the period [kWh, >= 0], the difference of the member's PV
        counters; None when the member has no PV channel or it is incomplete or went back.
    """

    member_id: str
    member_type: str
    grid_import_kwh: Decimal
    grid_export_kwh: Decimal
    pv_kwh: Decimal | None = None


@dataclass(frozen=True)
class PeriodAggregate:
    """The block in one settled 30-minute JST period ``[start_utc, end_utc)``.

    Attributes
    ----------
    start_utc, end_utc : datetime
        The period, tz-aware UTC.
    grid_import_kwh, grid_export_kwh : Decimal
        The block's exchange with the utility grid: sums over the members' grid meters [kWh].
        P2P energy stays inside the block and is not part of it.
    members : tuple of MemberExchange
        Per-member figures; published only with ``cityos.per_member``.
    pv_kwh : Decimal or None
        The block's PV production [kWh]: the sum of the members' ``pv_kwh``, None unless every
        PV channel of the period's readings gave a value (a partial sum is never published),
        and None for readings without PV channels (ledgers from before PV was recorded).
    """

    start_utc: dt.datetime
    end_utc: dt.datetime
    grid_import_kwh: Decimal
    grid_export_kwh: Decimal
    members: tuple[MemberExchange, ...]
    pv_kwh: Decimal | None = None


def member_pv_kwh(readings: PeriodReadings | None) -> dict[str, Decimal | None]:
    """PV energy per member with a ``pv`` channel in ``readings`` [kWh] (None: not known)."""
    if readings is None:
        return {}
    out: dict[str, Decimal | None] = {}
    for channel in readings.channels:
        if channel.channel == PV_CHANNEL:
            deltas = channel.deltas_kwh()
            out[channel.member_id] = None if deltas is None else deltas[0]
    return out


def aggregate_period(settlement: PeriodSettlement, member_types: dict[str, str],
                     readings: PeriodReadings | None = None) -> PeriodAggregate:
    """The block aggregate of a settled period (``member_types``: node id to member type),
    with PV production from the ``pv`` channels of the ``readings`` it was settled from."""
    pv = member_pv_kwh(readings)
    members = tuple(
        MemberExchange(m.member_id, member_types.get(m.member_id, "home"), m.grid_import_kwh,
                       m.grid_export_kwh, pv.get(m.member_id))
        for m in settlement.members
    )
    known = [v for v in pv.values() if v is not None]
    return PeriodAggregate(
        start_utc=settlement.start_utc,
        end_utc=settlement.start_utc + dt.timedelta(minutes=30),
        grid_import_kwh=sum((m.grid_import_kwh for m in members), Decimal(0)),
        grid_export_kwh=sum((m.grid_export_kwh for m in members), Decimal(0)),
        members=members,
        pv_kwh=sum(known, Decimal(0)) if pv and len(known) == len(pv) else None,
    )


class AttributeKind(enum.Enum):
    """NGSI-LD attribute types."""

    PROPERTY = "Property"
    GEO_PROPERTY = "GeoProperty"
    RELATIONSHIP = "Relationship"


@dataclass(frozen=True)
class Attribute:
    """One attribute of an entity.

    Attributes
    ----------
    name : str
        The Smart Data Model's attribute name (``totalActiveEnergyImport``).
    value : JSON value
        Number, string, GeoJSON object, or the target id(s) of a relationship.
    kind : AttributeKind
    unit_code : str or None
        UN/CEFACT common code of a quantity (``KWH``).
    observed_at : datetime or None
        When a measured value was observed (the end of its period), tz-aware.
    """

    name: str
    value: object
    kind: AttributeKind = AttributeKind.PROPERTY
    unit_code: str | None = None
    observed_at: dt.datetime | None = None


@dataclass(frozen=True)
class Entity:
    """An NGSI-LD entity of a Smart Data Model, in no particular form."""

    id: str
    type: str
    attributes: tuple[Attribute, ...]

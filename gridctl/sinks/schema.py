"""The InfluxDB schema of gridctl: measurements, tags and fields (docs/influxdb-schema.md).

Points are made with ``influxdb_client.Point`` and stored in the outbox as line protocol with
nanosecond timestamps. Timestamps and tags are deterministic (period start; site, member,
mechanism), so re-sending a period, or a corrected revision of it, overwrites the same point
instead of adding a second one. Money is sent as float fields for dashboards; the ledger's
``Decimal`` values stay authoritative.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from influxdb_client import Point, WritePrecision

from gridctl.settlement.model import PeriodSettlement

SETTLEMENT_PERIOD = "settlement_period"
SETTLEMENT_MEMBER = "settlement_member"
TELEMETRY = "telemetry"
HEALTH = "gridctl_health"
LEDGER_HEAD = "ledger_head"


def _ns(at: dt.datetime) -> int:
    if at.tzinfo is None:
        raise ValueError("point timestamps must be timezone-aware")
    delta = at - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _f(value: Decimal) -> float:
    return float(value)


def _failed_checks(settlement: PeriodSettlement) -> int:
    """How many of the period's three checks failed (a number dashboards can sum)."""
    checks = settlement.checks
    return sum(not ok for ok in (checks.energy_balance_ok, checks.money_balance_ok,
                                 checks.individually_rational_ok))


def settlement_points(settlement: PeriodSettlement, site_id: str, revision: int) -> list[str]:
    """Line protocol of one settled period: one block point and one point per member."""
    at = _ns(settlement.start_utc)
    block = (
        Point(SETTLEMENT_PERIOD)
        .tag("site", site_id)
        .tag("mechanism", settlement.mechanism)
        .field("price_jpy_per_kwh", _f(settlement.price_jpy_per_kwh))
        .field("seller_price_jpy_per_kwh", _f(settlement.seller_price_jpy_per_kwh))
        .field("fee_jpy_per_kwh", _f(settlement.fee_jpy_per_kwh))
        .field("sold_kwh", _f(settlement.sold_kwh))
        .field("bought_kwh", _f(settlement.bought_kwh))
        .field("losses_kwh", _f(settlement.losses_kwh))
        .field("energy_balance_ok", settlement.checks.energy_balance_ok)
        .field("money_balance_ok", settlement.checks.money_balance_ok)
        .field("individually_rational_ok", settlement.checks.individually_rational_ok)
        .field("flags", ";".join(settlement.flags))
        .field("flag_count", len(settlement.flags))
        .field("checks_failed", _failed_checks(settlement))
        .field("revision", int(revision))
        .time(at, WritePrecision.NS)
    )
    if settlement.supply_demand_ratio is not None:
        block.field("supply_demand_ratio", _f(settlement.supply_demand_ratio))
    lines = [block.to_line_protocol()]
    for m in settlement.members:
        point = (
            Point(SETTLEMENT_MEMBER)
            .tag("site", site_id)
            .tag("member", m.member_id)
            .tag("mechanism", settlement.mechanism)
            .field("role", m.role)
            .field("grid_import_kwh", _f(m.grid_import_kwh))
            .field("grid_export_kwh", _f(m.grid_export_kwh))
            .field("p2p_bought_kwh", _f(m.p2p_bought_kwh))
            .field("p2p_sold_kwh", _f(m.p2p_sold_kwh))
            .field("p2p_paid_jpy", _f(m.p2p_paid_jpy))
            .field("p2p_received_jpy", _f(m.p2p_received_jpy))
            .field("fee_jpy", _f(m.fee_jpy))
            .field("wheeled_sent_kwh", _f(m.wheeled_sent_kwh))
            .field("wheeled_received_kwh", _f(m.wheeled_received_kwh))
            .field("wheeling_paid_jpy", _f(m.wheeling_paid_jpy))
            .field("wheeling_received_jpy", _f(m.wheeling_received_jpy))
            .field("platform_credit_jpy", _f(m.platform_credit_jpy))
            .field("bill_jpy", _f(m.bill_jpy))
            .field("grid_only_jpy", _f(m.grid_only_jpy))
            .field("savings_jpy", _f(m.savings_jpy))
            .field("revision", int(revision))
            .time(at, WritePrecision.NS)
        )
        lines.append(point.to_line_protocol())
    return lines


def telemetry_point(
    site_id: str, device_id: str, at_utc: dt.datetime, fields: dict[str, float | int | bool | str],
    member_id: str = "",
) -> str:
    """One telemetry sample as line protocol (measurement ``telemetry``).

    Parameters
    ----------
    site_id, device_id, member_id : str
        Tags; ``member_id`` may be empty for block-level values.
    at_utc : datetime
        Sample time (tz-aware); deterministic so a replay overwrites.
    fields : dict
        Field name (with its unit suffix, e.g. ``power_kw``) to value.
    """
    if not fields:
        raise ValueError(f"telemetry point for {device_id} has no fields")
    point = Point(TELEMETRY).tag("site", site_id).tag("device", device_id)
    if member_id:
        point.tag("member", member_id)
    for name, value in fields.items():
        point.field(name, value)
    return point.time(_ns(at_utc), WritePrecision.NS).to_line_protocol()


def ledger_head_point(site_id: str, seq: int, head_sha256: str, at_utc: dt.datetime) -> str:
    """The ledger's head right after recording a period: an anchor for ``settle verify --anchor``.

    Timed at the period's start like the period's other points (deterministic: a correction
    overwrites it with the newer head). Any ``(seq, head_sha256)`` a third party holds is an
    anchor; the one with the largest ``seq`` covers the most.
    """
    return (
        Point(LEDGER_HEAD).tag("site", site_id).field("seq", int(seq)).field("head_sha256", head_sha256)
        .time(_ns(at_utc), WritePrecision.NS).to_line_protocol()
    )


def health_point(site_id: str, nonce: str, at_utc: dt.datetime) -> str:
    """The point a health check writes to prove the server accepts writes."""
    return (
        Point(HEALTH).tag("site", site_id).field("nonce", nonce)
        .time(_ns(at_utc), WritePrecision.NS).to_line_protocol()
    )


def as_lines(points: Iterable[str | Point]) -> list[str]:
    """Line protocol of points given as strings or ``Point`` objects (ns precision)."""
    out = []
    for p in points:
        line = p if isinstance(p, str) else p.to_line_protocol()
        if not line:
            raise ValueError("a telemetry point has no fields")
        out.append(line)
    return out

"""Values of the settlement: what goes into a 30-minute period and what comes out.

All energies are ``Decimal`` kWh and all money ``Decimal`` JPY (tax-inclusive, the Japanese
retail convention of the tariffs). Counters follow the supply-positive convention of the
drivers: ``import_kwh`` counts energy flowing *into* the member (grid import at the grid meter;
inflow into the member's router from a link leg), ``export_kwh`` energy flowing *out* (grid
export; outflow from the router into the link).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

#: Channel name of a member's grid meter; router link legs are ``link:<link id>``.
GRID_CHANNEL = "grid"
LINK_PREFIX = "link:"
#: Channel of a member's PV production (the sum of its PV inverters' lifetime energy counters):
#: ``import_kwh`` counts PV energy into the member, ``export_kwh`` is always 0. Optional, and
#: recorded for publication only: the settlement and its checks never read it.
PV_CHANNEL = "pv"


class CounterSource(StrEnum):
    """Where a boundary's counters came from, for a channel whose meter keeps fixed 30-minute
    counters (a Japanese smart meter, ECHONET Lite 0x0288 EPC 0xEA/0xEB). Other channels leave
    the source unset (None): a live sample, the first taken at or after the boundary."""

    #: The meter's own counters frozen at that fixed 30-minute point (exact; the billing value).
    FIXED_POINT = "fixed_point"
    #: No fixed-point value for that boundary arrived within the grace time: the first live
    #: sample at or after the boundary, as for any meter (the period is flagged).
    LIVE_FALLBACK = "live_fallback"


#: Settlement flag of a period that used a live fallback for a fixed-point meter's boundary.
FIXED_POINT_MISSING_FLAG = "fixed_point_missing"


def link_channel(link_id: str) -> str:
    """Channel name of the router leg on link ``link_id``."""
    return f"{LINK_PREFIX}{link_id}"


#: Resolution of a meter counter in settlement [kWh] (1 mWh: finer than any meter).
COUNTER_QUANTUM = Decimal("0.000001")


def counter_kwh(value: float | None) -> Decimal | None:
    """A meter's cumulative counter [kWh] as settlement records it: one exact decimal at
    :data:`COUNTER_QUANTUM`, whoever read it (the daemon from a device, the simulator from
    its plant), so equal readings settle and hash alike."""
    if value is None:
        return None
    return Decimal(repr(float(value))).quantize(COUNTER_QUANTUM)


@dataclass(frozen=True)
class ChannelReading:
    """Cumulative counters of one metered channel at the start and end of a period.

    Attributes
    ----------
    member_id : str
        Member (node) whose meter or router leg this is.
    channel : str
        ``grid`` for the grid meter, ``link:<link id>`` for the router leg on that link.
    start_import_kwh, start_export_kwh : Decimal or None
        Counters at the period start [kWh]; None when no reading exists.
    end_import_kwh, end_export_kwh : Decimal or None
        Counters at the period end [kWh]; None when no reading exists (late or missing).
    start_source, end_source : CounterSource or None
        Where the start / end counters came from when the channel's meter keeps fixed
        30-minute counters; None for a live sample of any other meter (and absent from the
        canonical JSON then, so readings of such meters hash as before).
    """

    member_id: str
    channel: str
    start_import_kwh: Decimal | None
    start_export_kwh: Decimal | None
    end_import_kwh: Decimal | None
    end_export_kwh: Decimal | None
    start_source: CounterSource | None = None
    end_source: CounterSource | None = None

    @property
    def fell_back(self) -> bool:
        """A boundary of a fixed-point meter was read live because its fixed value was missing."""
        return CounterSource.LIVE_FALLBACK in (self.start_source, self.end_source)

    @property
    def complete(self) -> bool:
        """All four counters are present."""
        return None not in (
            self.start_import_kwh, self.start_export_kwh, self.end_import_kwh, self.end_export_kwh
        )

    def deltas_kwh(self) -> tuple[Decimal, Decimal] | None:
        """``(import, export)`` energy of the period [kWh], or None if incomplete or negative."""
        if not self.complete:
            return None
        imp = self.end_import_kwh - self.start_import_kwh  # type: ignore[operator]
        exp = self.end_export_kwh - self.start_export_kwh  # type: ignore[operator]
        if imp < 0 or exp < 0:
            return None
        return imp, exp


#: Optional fields of a channel in the canonical JSON (written only when set).
_SOURCE_FIELDS = ("start_source", "end_source")


@dataclass(frozen=True)
class PeriodReadings:
    """Everything metered for one 30-minute JST period.

    Attributes
    ----------
    start_utc : datetime
        Period start, tz-aware UTC, aligned to a JST half hour.
    channels : tuple of ChannelReading
        One reading per member channel; absent channels are treated as missing.
    """

    start_utc: dt.datetime
    channels: tuple[ChannelReading, ...]

    @property
    def end_utc(self) -> dt.datetime:
        return self.start_utc + dt.timedelta(minutes=30)

    def channel(self, member_id: str, channel: str) -> ChannelReading | None:
        """The reading of ``member_id``'s ``channel``, if any."""
        for reading in self.channels:
            if reading.member_id == member_id and reading.channel == channel:
                return reading
        return None

    def to_json(self) -> str:
        """Canonical JSON (sorted channels, string decimals), stable for hashing."""
        return self._json

    @functools.cached_property
    def _json(self) -> str:
        rows = sorted(
            ({k: (None if v is None else str(v)) for k, v in vars(c).items()
              if v is not None or k not in _SOURCE_FIELDS} for c in self.channels),
            key=lambda r: (r["member_id"], r["channel"]),
        )
        return json.dumps(
            {"start_utc": self.start_utc.isoformat(), "channels": rows},
            sort_keys=True, separators=(",", ":"),
        )

    def sha256(self) -> str:
        """Hash of the canonical JSON: two equal readings have equal hashes."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def from_deltas(
        cls, start_utc: dt.datetime, deltas_kwh: dict[tuple[str, str], tuple[Decimal, Decimal]],
        base_kwh: Decimal = Decimal(0),
    ) -> PeriodReadings:
        """Readings whose counters rise by ``deltas_kwh[(member, channel)] = (import, export)``.

        For simulators that integrate energy per period rather than keep counters [kWh].
        """
        channels = tuple(
            ChannelReading(member, channel, base_kwh, base_kwh, base_kwh + Decimal(imp), base_kwh + Decimal(exp))
            for (member, channel), (imp, exp) in sorted(deltas_kwh.items())
        )
        return cls(start_utc=start_utc, channels=channels)

    @classmethod
    def from_json(cls, text: str) -> PeriodReadings:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)
        channels = tuple(
            ChannelReading(
                member_id=row["member_id"],
                channel=row["channel"],
                **{
                    k: (None if row[k] is None else Decimal(row[k]))
                    for k in ("start_import_kwh", "start_export_kwh", "end_import_kwh", "end_export_kwh")
                },
                **{k: CounterSource(row[k]) for k in _SOURCE_FIELDS if row.get(k) is not None},
            )
            for row in data["channels"]
        )
        return cls(start_utc=dt.datetime.fromisoformat(data["start_utc"]), channels=channels)


@dataclass(frozen=True)
class Trade:
    """One member's P2P exchange with one counterparty in a period (pro-rata of the pool).

    ``bought_kwh`` is P2P-priced energy received at this member's router [kWh]; ``sold_kwh``
    P2P-priced energy sent from it [kWh]; ``paid_jpy`` and ``received_jpy`` the money [JPY].
    The ``wheeled_*`` and ``wheeling_*`` fields are the same for wheeled energy (grid energy a
    relaying member passed on, see :mod:`gridctl.settlement.wheeling`); 0 in older ledgers.
    """

    counterparty: str
    bought_kwh: Decimal = Decimal(0)
    sold_kwh: Decimal = Decimal(0)
    paid_jpy: Decimal = Decimal(0)
    received_jpy: Decimal = Decimal(0)
    wheeled_bought_kwh: Decimal = Decimal(0)
    wheeled_sold_kwh: Decimal = Decimal(0)
    wheeling_paid_jpy: Decimal = Decimal(0)
    wheeling_received_jpy: Decimal = Decimal(0)


@dataclass(frozen=True)
class StatementRules:
    """How a member's monthly statement is rounded and taxed (from its import tariff).

    ``kwh_decimals`` and ``kwh_mode`` round monthly kWh; ``yen_mode`` rounds yen totals;
    ``tax_mode`` rounds the consumption tax, computed once per statement at
    ``consumption_tax_pct`` [%] out of tax-inclusive totals.
    """

    kwh_decimals: int = 0
    kwh_mode: str = "half_up"
    yen_mode: str = "floor"
    tax_mode: str = "floor"
    consumption_tax_pct: Decimal = Decimal(10)


@dataclass(frozen=True)
class MemberLine:
    """A member's settlement of one period.

    Attributes
    ----------
    member_id : str
    role : str
        ``buyer``, ``seller`` or ``none`` (net P2P position in the period).
    import_price_jpy_per_kwh, export_price_jpy_per_kwh : Decimal
        The member's own grid prices lambda_b and lambda_s [JPY/kWh].
    import_tariff, export_tariff : str
        ``id@version`` of the tariffs used ('' when the member has no buy-back tariff).
    grid_import_kwh, grid_export_kwh : Decimal
        Grid meter energy [kWh], both >= 0.
    grid_import_jpy, grid_export_jpy : Decimal
        Their value at the member's prices [JPY] (billed by the utility; for reference).
    p2p_bought_kwh, p2p_sold_kwh : Decimal
        P2P-priced energy received / sent at the member's router [kWh]: a sale is never more
        than the member's own net surplus of the period.
    p2p_paid_jpy, p2p_received_jpy, fee_jpy : Decimal
        P2P money paid, received, and the platform fee paid [JPY].
    trades : tuple of Trade
        The P2P and wheeling energy and money by counterparty.
    bill_jpy : Decimal
        Grid import - grid export + P2P paid + fee - P2P received + wheeling paid - wheeling
        received - platform credit [JPY].
    grid_only_jpy : Decimal
        The grid-only bill of the member's own net metered energy [JPY]:
        ``lambda_b * (I + bought - wheeled_sent) - lambda_s * (E + sold)`` (money-rounded per
        term), see :mod:`gridctl.settlement.settle`.
    wheeled_sent_kwh, wheeled_received_kwh : Decimal
        Wheeled energy (grid energy relayed, not the member's own surplus) sent on / received
        from the links [kWh]; 0 in older ledgers.
    wheeling_paid_jpy, wheeling_received_jpy : Decimal
        What a receiver pays for wheeled energy and what its relayer receives [JPY].
    platform_credit_jpy : Decimal
        What the platform credits the member so that it is no worse off than grid-only (a
        wheeling shortfall, or a period with no gains from trade) [JPY], >= 0.
    """

    member_id: str
    role: str
    import_price_jpy_per_kwh: Decimal
    export_price_jpy_per_kwh: Decimal
    import_tariff: str
    export_tariff: str
    grid_import_kwh: Decimal
    grid_export_kwh: Decimal
    grid_import_jpy: Decimal
    grid_export_jpy: Decimal
    p2p_bought_kwh: Decimal
    p2p_sold_kwh: Decimal
    p2p_paid_jpy: Decimal
    p2p_received_jpy: Decimal
    fee_jpy: Decimal
    trades: tuple[Trade, ...]
    bill_jpy: Decimal
    grid_only_jpy: Decimal
    rules: StatementRules = StatementRules()
    wheeled_sent_kwh: Decimal = Decimal(0)
    wheeled_received_kwh: Decimal = Decimal(0)
    wheeling_paid_jpy: Decimal = Decimal(0)
    wheeling_received_jpy: Decimal = Decimal(0)
    platform_credit_jpy: Decimal = Decimal(0)

    @property
    def link_bought_kwh(self) -> Decimal:
        """Net energy received on the member's links [kWh]: P2P-priced plus wheeled."""
        return self.p2p_bought_kwh + self.wheeled_received_kwh

    @property
    def link_sold_kwh(self) -> Decimal:
        """Net energy sent on the member's links [kWh]: P2P-priced plus wheeled."""
        return self.p2p_sold_kwh + self.wheeled_sent_kwh

    @property
    def own_surplus_kwh(self) -> Decimal:
        """The member's own net metered surplus [kWh] (negative: a deficit):
        ``E - I + link sold - link bought``."""
        return self.grid_export_kwh - self.grid_import_kwh + self.link_sold_kwh - self.link_bought_kwh

    def bill_from_parts_jpy(self) -> Decimal:
        """The bill as the sum of its parts [JPY] (what ``bill_jpy`` must equal)."""
        return (self.grid_import_jpy - self.grid_export_jpy + self.p2p_paid_jpy + self.fee_jpy
                - self.p2p_received_jpy + self.wheeling_paid_jpy - self.wheeling_received_jpy
                - self.platform_credit_jpy)

    @property
    def savings_jpy(self) -> Decimal:
        """Counterfactual minus actual bill [JPY]; >= 0 when individually rational."""
        return self.grid_only_jpy - self.bill_jpy


@dataclass(frozen=True)
class PeriodChecks:
    """The per-period checks that are part of every settlement.

    Attributes
    ----------
    energy_balance_ok : bool
        Sum of sold = sum of bought + metered link losses, exactly.
    money_balance_ok : bool
        Sum paid by buyers (incl. fee) = sum received by sellers + platform fee, exactly.
    individually_rational_ok : bool
        No member's bill exceeds its grid-only counterfactual by more than ``tolerance_jpy``.
    tolerance_jpy : Decimal
        Rounding allowance of the rationality check (one money quantum per line) [JPY].
    failures : tuple of str
        One line per failed check, naming the member where there is one.
    """

    energy_balance_ok: bool
    money_balance_ok: bool
    individually_rational_ok: bool
    tolerance_jpy: Decimal
    failures: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.energy_balance_ok and self.money_balance_ok and self.individually_rational_ok


@dataclass(frozen=True)
class PeriodSettlement:
    """The outcome of settling one period (a value; never raises for data problems).

    Attributes
    ----------
    start_utc : datetime
        Period start (UTC).
    mechanism : str
        ``sdr``, ``mmr`` or ``uniform_auction``.
    price_jpy_per_kwh : Decimal
        Clearing price per delivered P2P kWh, paid by buyers before the fee [JPY/kWh].
    seller_price_jpy_per_kwh : Decimal
        What sellers receive per sent kWh (the price net of link losses) [JPY/kWh].
    fee_jpy_per_kwh : Decimal
        Platform fee per delivered kWh, paid by buyers [JPY/kWh].
    supply_demand_ratio : Decimal or None
        SDR of net positions (None when there is no net demand).
    sold_kwh, bought_kwh, losses_kwh : Decimal
        Block totals of energy sent and received on the links (P2P-priced and wheeled) and the
        metered link losses [kWh].
    members : tuple of MemberLine
    checks : PeriodChecks
    flags : tuple of str
        Data-quality notes: missing or estimated channels, no gains from trade...
    readings_sha256 : str
        Hash of the readings settled.
    buy_limit_jpy_per_kwh, sell_limit_jpy_per_kwh : Decimal or None
        The period's ``lambda_b'`` (lowest buyer import price less the fee) and ``lambda_s'``
        (highest seller export value per delivered kWh) [JPY/kWh]: the band a rational price
        lies in. None in periods recorded before they were kept.
    supply_kwh, demand_kwh : Decimal or None
        The block's G and D: sums of the members' net surpluses and net deficits [kWh].
    wheeled_kwh : Decimal
        Wheeled energy delivered to members in the period [kWh] (part of ``bought_kwh``).
    wheeling_shortfall_jpy : Decimal
        Platform cost where a receiver's own import price capped its wheeling payment [JPY].
    platform_credit_jpy : Decimal
        Sum of the members' platform credits [JPY] (the shortfall included).
    market_terms_from : str or None
        Local date (ISO) from which the market terms used (mechanism, fee) are in force; ''
        for the terms from the beginning; None in periods recorded before terms were dated.
    """

    start_utc: dt.datetime
    mechanism: str
    price_jpy_per_kwh: Decimal
    seller_price_jpy_per_kwh: Decimal
    fee_jpy_per_kwh: Decimal
    supply_demand_ratio: Decimal | None
    sold_kwh: Decimal
    bought_kwh: Decimal
    losses_kwh: Decimal
    members: tuple[MemberLine, ...]
    checks: PeriodChecks
    flags: tuple[str, ...] = field(default=())
    readings_sha256: str = ""
    buy_limit_jpy_per_kwh: Decimal | None = None
    sell_limit_jpy_per_kwh: Decimal | None = None
    supply_kwh: Decimal | None = None
    demand_kwh: Decimal | None = None
    wheeled_kwh: Decimal = Decimal(0)
    wheeling_shortfall_jpy: Decimal = Decimal(0)
    platform_credit_jpy: Decimal = Decimal(0)
    market_terms_from: str | None = None

    def member(self, member_id: str) -> MemberLine:
        """The line of ``member_id`` (KeyError if absent)."""
        for line in self.members:
            if line.member_id == member_id:
                return line
        raise KeyError(member_id)

"""Verification of a ledger: chain, seals, anchors, bodies, revisions, readings, continuity, periods.

``gridctl settle verify`` runs :func:`verify_ledger`; it needs no site file: the entries carry
the prices used, so energy and money can be recomputed from the stored readings and kWh. The
hash chain covers every entry, the months' opening balances included. With the site file
every period is also settled again through :class:`~gridctl.ledger.book.SettlementBook`'s fold
of the month-to-date import, the very fold it was recorded with.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from gridctl.config.site import SiteConfig
from gridctl.ledger.book import SettlementBook, month_bounds_utc
from gridctl.ledger.seal import Anchor, check_anchors, check_seals
from gridctl.ledger.store import GENESIS_HASH, Ledger
from gridctl.ledger.verify_structure import (
    Problem, Shape, check_chain, check_continuity, check_readings, check_revisions, decode,
)
from gridctl.settlement.checks import check_period
from gridctl.settlement.model import GRID_CHANNEL, LINK_PREFIX, MemberLine, PeriodReadings, PeriodSettlement
from gridctl.settlement.settle import MONEY_QUANTUM, market_terms_differ, q_money, settle_period

ZERO = Decimal(0)


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of a verification: ``problem`` names the first bad entry or period, else None.

    ``head_seq`` and ``head_hash`` are the last entry's (0 and the genesis hash when empty);
    ``seals_checked`` is None when no key was given (the head is then not proven by a seal);
    ``gap_periods`` counts the periods declared as gaps.
    """

    entries_checked: int
    periods_checked: int
    head_hash: str
    problem: str | None
    head_seq: int = 0
    seals_checked: int | None = None
    seals_stored: int = 0
    gap_periods: int = 0
    anchors_checked: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_ledger(ledger: Ledger, site: SiteConfig | None = None, key: bytes | None = None,
                  anchors: Sequence[Anchor] = ()) -> VerifyReport:
    """Check everything the ledger promises; stop at the first problem.

    In order: the hash chain; with ``key`` every seal and that the last seal is at the head;
    every ``anchor``; every body decodes to what its kind must hold; revisions 1..n of each
    period, every superseded revision reversed exactly once and no orphan reversal; every
    revision's readings present, intact and the ones it was settled from; continuity (every
    30-minute period from the first to the last settled, or inside a declared gap); each
    current period's energy, money and checks from its readings and prices.

    With ``site``, every period is also settled again from its stored readings, with the
    month-to-date import folded from the ledger (the month's opening balance plus the current
    settlements before it, as when it was recorded), and must reproduce the stored settlement
    exactly: this catches a consistent rewrite of prices and amounts that still balances, and
    an altered opening balance.
    """
    rows = ledger.entry_rows()
    head_seq, head = (rows[-1][0], rows[-1][-1]) if rows else (0, GENESIS_HASH)
    seals = ledger.seals()
    done = {"periods": 0, "gaps": 0}
    try:
        check_chain(rows)
        hashes = {row[0]: row[-1] for row in rows}
        if key is not None:
            _raise(check_seals(seals, hashes, head_seq, key))
        _raise(check_anchors(anchors, hashes))
        shape = decode(rows)
        check_revisions(shape)
        readings = check_readings(shape, ledger.readings_rows())
        done["gaps"] = check_continuity(shape)
        if site is not None:
            _raise(_verify_openings(ledger, site))
        _verify_periods(shape, readings, SettlementBook(site, ledger) if site is not None else None, done)
        problem = None
    except Problem as exc:
        problem = str(exc)
    return VerifyReport(len(rows), done["periods"], head, problem, head_seq,
                        len(seals) if key is not None else None, len(seals), done["gaps"], len(anchors))


def _raise(problem: str | None) -> None:
    if problem:
        raise Problem(problem)


def _verify_periods(shape: Shape, stored: dict, book: SettlementBook | None, done: dict[str, int]) -> None:
    for settlement, revision in shape.current():
        done["periods"] += 1
        readings = stored[settlement.start_utc, revision]
        problem = _verify_period(settlement, readings)
        if book is not None and problem is None:
            mtd = book.month_to_date_import_kwh(settlement.start_utc)
            if _as_recorded(settle_period(book.site, readings, mtd), settlement) != settlement:
                problem = (market_terms_differ(book.site, settlement)
                           or "settling the stored readings again gives a different result")
        if problem:
            raise Problem(f"period {settlement.start_utc.isoformat()} revision {revision}: {problem}")


#: Period fields a ledger keeps since stop 18 (absent, read as None, in entries recorded before).
_LATER_PERIOD_FIELDS = ("buy_limit_jpy_per_kwh", "sell_limit_jpy_per_kwh", "supply_kwh", "demand_kwh",
                        "market_terms_from")


def _as_recorded(fresh: PeriodSettlement, stored: PeriodSettlement) -> PeriodSettlement:
    """``fresh`` without the fields an older entry never recorded, so a ledger made by an
    earlier gridctl re-settles equal wherever the figures it did record are the same."""
    older = {name: None for name in _LATER_PERIOD_FIELDS if getattr(stored, name) is None}
    return replace(fresh, **older) if older else fresh


def _verify_openings(ledger: Ledger, site: SiteConfig) -> str | None:
    """Each opening balance must sit at the start of a site-local month and name site members."""
    members = {n.id for n in site.nodes}
    try:
        openings = {dt.datetime.fromisoformat(k): (k, v) for k, v in ledger.openings().items()}
    except (ArithmeticError, KeyError, TypeError, ValueError):
        return "opening balance: an entry does not hold a month start and a number of kWh"
    for start, (month_start, imports) in openings.items():
        if month_bounds_utc(site, start)[0] != start:
            return f"opening balance at {month_start}: not the start of a month in {site.site.timezone}"
        unknown = sorted(set(imports) - members)
        if unknown:
            return f"opening balance at {month_start}: unknown member(s) {', '.join(unknown)}"
    return None


def _verify_period(settlement: PeriodSettlement, readings: PeriodReadings) -> str | None:
    if readings.sha256() != settlement.readings_sha256:
        return "readings do not match the settlement's readings hash"
    checks = check_period(
        settlement.members, settlement.sold_kwh, settlement.bought_kwh, settlement.losses_kwh, MONEY_QUANTUM
    )
    if not checks.ok:
        return checks.failures[0]
    for line in settlement.members:
        problem = _energy_from_readings(line, readings, settlement.flags) or _money_from_prices(line, settlement)
        if problem:
            return f"{line.member_id}: {problem}"
    return None


def _energy_from_readings(line: MemberLine, readings: PeriodReadings, flags: tuple[str, ...]) -> str | None:
    grid = readings.channel(line.member_id, GRID_CHANNEL)
    deltas = grid.deltas_kwh() if grid else None
    if deltas is not None and deltas != (line.grid_import_kwh, line.grid_export_kwh):
        return f"grid kWh {line.grid_import_kwh}/{line.grid_export_kwh} differ from the readings {deltas[0]}/{deltas[1]}"
    if any(f.startswith(f"estimated:{line.member_id}:") for f in flags):
        return None
    inflow = outflow = ZERO
    for c in readings.channels:
        if c.member_id == line.member_id and c.channel.startswith(LINK_PREFIX):
            d = c.deltas_kwh()
            if d is None:
                return None  # settled from the other end's estimate
            inflow, outflow = inflow + d[0], outflow + d[1]
    net = inflow - outflow
    if (max(ZERO, net), max(ZERO, -net)) != (line.link_bought_kwh, line.link_sold_kwh):
        return f"link kWh bought/sold {line.link_bought_kwh}/{line.link_sold_kwh} differ from the router legs"
    return None


def _money_from_prices(line: MemberLine, settlement: PeriodSettlement) -> str | None:
    if q_money(line.import_price_jpy_per_kwh * line.grid_import_kwh) != line.grid_import_jpy:
        return "grid import JPY does not equal kWh x price"
    if q_money(line.export_price_jpy_per_kwh * line.grid_export_kwh) != line.grid_export_jpy:
        return "grid export JPY does not equal kWh x price"
    if line.trades and line.p2p_bought_kwh > 0:
        if q_money(settlement.price_jpy_per_kwh * line.p2p_bought_kwh) != line.p2p_paid_jpy:
            return "P2P payment does not equal bought kWh x price"
        if q_money(settlement.fee_jpy_per_kwh * line.p2p_bought_kwh) != line.fee_jpy:
            return "platform fee does not equal bought kWh x fee"
    bill = line.bill_from_parts_jpy()
    if bill != line.bill_jpy:
        return f"bill {line.bill_jpy} JPY does not add up ({bill} JPY)"
    return None

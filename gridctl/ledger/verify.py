"""Verification of a ledger: the hash chain, the stored readings and every period's checks.

``gridctl settle verify`` runs :func:`verify_ledger`; it needs no site file: the entries carry
the prices used, so energy and money can be recomputed from the stored readings and kWh. The
hash chain covers every entry, the months' opening balances included. With the site file
every period is also settled again through :class:`~gridctl.ledger.book.SettlementBook`'s fold
of the month-to-date import, the very fold it was recorded with.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
import datetime as dt
from decimal import Decimal

from gridctl.config.site import SiteConfig
from gridctl.ledger.book import SettlementBook, month_bounds_utc
from gridctl.ledger.store import GENESIS_HASH, Ledger, entry_hash
from gridctl.settlement.checks import check_period
from gridctl.settlement.model import GRID_CHANNEL, LINK_PREFIX, MemberLine, PeriodReadings, PeriodSettlement
from gridctl.settlement.settle import MONEY_QUANTUM, market_terms_differ, q_money, settle_period

ZERO = Decimal(0)


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of a verification: ``problem`` names the first bad entry or period, else None."""

    entries_checked: int
    periods_checked: int
    head_hash: str
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_ledger(ledger: Ledger, site: SiteConfig | None = None) -> VerifyReport:
    """Walk the chain, then recheck every current period; stop at the first problem.

    With ``site``, every period is also settled again from its stored readings, with the
    month-to-date import folded from the ledger (the month's opening balance plus the current
    settlements before it, as when it was recorded), and must reproduce the stored settlement
    exactly: this catches a consistent rewrite of prices and amounts that still balances, and
    an altered opening balance.
    """
    count, problem = _verify_chain(ledger)
    if problem:
        return VerifyReport(count, 0, ledger.head_hash(), problem)
    problem = _verify_readings(ledger) or (_verify_openings(ledger, site) if site is not None else None)
    if problem:
        return VerifyReport(count, 0, ledger.head_hash(), problem)
    periods = 0
    book = SettlementBook(site, ledger) if site is not None else None
    for settlement, revision in ledger.settlements():
        periods += 1
        readings = ledger.readings(settlement.start_utc, revision)
        problem = _verify_period(settlement, readings)
        if book is not None and problem is None and readings is not None:
            mtd = book.month_to_date_import_kwh(settlement.start_utc)
            if settle_period(book.site, readings, mtd) != settlement:
                problem = (market_terms_differ(book.site, settlement)
                           or "settling the stored readings again gives a different result")
        if problem:
            where = f"period {settlement.start_utc.isoformat()} revision {revision}"
            return VerifyReport(count, periods, ledger.head_hash(), f"{where}: {problem}")
    return VerifyReport(count, periods, ledger.head_hash(), None)


def _verify_chain(ledger: Ledger) -> tuple[int, str | None]:
    prev = GENESIS_HASH
    count = 0
    for e in ledger.entries():
        count += 1
        name = f"entry {e.seq} (period {e.period_start_utc}, {e.kind} {e.member_id or '-'}, revision {e.revision})"
        if e.prev_hash != prev:
            return count, f"{name}: chain broken (prev_hash does not match the entry before)"
        if entry_hash(prev, e.period_start_utc, e.revision, e.kind, e.member_id, e.sign, e.body_text) != e.hash:
            return count, f"{name}: hash mismatch (entry was altered)"
        prev = e.hash
    return count, None


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


def _verify_readings(ledger: Ledger) -> str | None:
    for period, revision, sha, body in ledger.readings_rows():
        if hashlib.sha256(PeriodReadings.from_json(body).to_json().encode()).hexdigest() != sha:
            return f"readings of period {period} revision {revision}: hash mismatch (altered)"
    return None


def _verify_period(settlement: PeriodSettlement, readings: PeriodReadings | None) -> str | None:
    if readings is None:
        return "readings missing"
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

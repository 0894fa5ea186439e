"""The per-period checks: energy balance, money balance, individual rationality, own surplus.

Used by the settlement itself and again by ``gridctl settle verify`` on what the ledger holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from gridctl.settlement.model import MemberLine, PeriodChecks

ZERO = Decimal(0)


def check_period(
    lines: Sequence[MemberLine],
    sold_kwh: Decimal,
    bought_kwh: Decimal,
    losses_kwh: Decimal,
    money_quantum_jpy: Decimal,
) -> PeriodChecks:
    """Check one period's member lines against the block totals.

    Parameters
    ----------
    lines : sequence of MemberLine
    sold_kwh, bought_kwh, losses_kwh : Decimal
        Block totals of sent and received P2P energy and metered link losses [kWh].
    money_quantum_jpy : Decimal
        Money rounding quantum [JPY]; the rationality check allows one per member line and two
        more (price and fee rounding).
    """
    failures = _energy_failures(lines, sold_kwh, bought_kwh, losses_kwh)
    money = _money_failures(lines)
    tolerance = money_quantum_jpy * (len(lines) + 2)
    irrational = [
        f"individual rationality: {line.member_id} pays {line.bill_jpy} JPY > grid-only "
        f"{line.grid_only_jpy} JPY"
        for line in lines
        if line.bill_jpy > line.grid_only_jpy + tolerance
    ]
    resale = [
        f"own surplus: {line.member_id} sold {line.p2p_sold_kwh} kWh P2P > its own net surplus "
        f"{max(ZERO, line.own_surplus_kwh)} kWh (the rest is wheeling)"
        for line in lines
        if line.p2p_sold_kwh > max(ZERO, line.own_surplus_kwh)
    ]
    return PeriodChecks(
        energy_balance_ok=not failures,
        money_balance_ok=not money,
        individually_rational_ok=not irrational and not resale,
        tolerance_jpy=tolerance,
        failures=tuple(failures + money + irrational + resale),
    )


def _energy_failures(
    lines: Sequence[MemberLine], sold_kwh: Decimal, bought_kwh: Decimal, losses_kwh: Decimal
) -> list[str]:
    out = []
    member_sold = sum((line.link_sold_kwh for line in lines), ZERO)
    member_bought = sum((line.link_bought_kwh for line in lines), ZERO)
    if member_sold != sold_kwh or member_bought != bought_kwh:
        out.append(f"energy balance: members sold {member_sold} / bought {member_bought} kWh, "
                   f"block {sold_kwh} / {bought_kwh} kWh")
    if sold_kwh != bought_kwh + losses_kwh:
        out.append(f"energy balance: sold {sold_kwh} kWh != bought {bought_kwh} + losses {losses_kwh} kWh")
    for line in lines:
        if not line.trades:
            continue
        t_bought = sum((t.bought_kwh for t in line.trades), ZERO)
        t_sold = sum((t.sold_kwh for t in line.trades), ZERO)
        if t_bought != line.p2p_bought_kwh or t_sold != line.p2p_sold_kwh:
            out.append(f"energy balance: {line.member_id}'s trades do not add up to its P2P kWh")
        w_bought = sum((t.wheeled_bought_kwh for t in line.trades), ZERO)
        w_sold = sum((t.wheeled_sold_kwh for t in line.trades), ZERO)
        if (w_bought or w_sold) and (w_bought, w_sold) != (line.wheeled_received_kwh, line.wheeled_sent_kwh):
            out.append(f"energy balance: {line.member_id}'s trades do not add up to its wheeled kWh")
    return out


def _money_failures(lines: Sequence[MemberLine]) -> list[str]:
    out = []
    paid = sum((line.p2p_paid_jpy + line.fee_jpy for line in lines), ZERO)
    received = sum((line.p2p_received_jpy for line in lines), ZERO)
    fee = sum((line.fee_jpy for line in lines), ZERO)
    if paid != received + fee:
        out.append(f"money balance: paid {paid} JPY != received {received} + fee {fee} JPY")
    w_paid = sum((line.wheeling_paid_jpy for line in lines), ZERO)
    w_received = sum((line.wheeling_received_jpy for line in lines), ZERO)
    if w_paid != w_received:
        out.append(f"money balance: wheeling paid {w_paid} JPY != wheeling received {w_received} JPY")
    pairs: dict[tuple[str, str], Decimal] = {}
    for line in lines:
        for t in line.trades:
            key = (line.member_id, t.counterparty)
            pairs[key] = pairs.get(key, ZERO) + t.paid_jpy + t.wheeling_paid_jpy
            key = (t.counterparty, line.member_id)
            pairs[key] = pairs.get(key, ZERO) - t.received_jpy - t.wheeling_received_jpy
        if sum((t.paid_jpy for t in line.trades), ZERO) != line.p2p_paid_jpy:
            out.append(f"money balance: {line.member_id}'s trades do not add up to its payment")
        if sum((t.wheeling_paid_jpy for t in line.trades), ZERO) != line.wheeling_paid_jpy:
            out.append(f"money balance: {line.member_id}'s trades do not add up to its wheeling payment")
        if line.platform_credit_jpy < 0:
            out.append(f"money balance: {line.member_id}'s platform credit is negative")
        if line.bill_from_parts_jpy() != line.bill_jpy:
            out.append(f"money balance: {line.member_id}'s bill {line.bill_jpy} JPY is not the sum "
                       f"of its parts ({line.bill_from_parts_jpy()} JPY)")
    for (buyer, seller), rest in sorted(pairs.items()):
        if rest != 0:
            out.append(f"money balance: {buyer} paid {seller} {rest} JPY more than {seller} received")
    return out

"""The per-period checks: energy balance, money balance, individual rationality.

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
    return PeriodChecks(
        energy_balance_ok=not failures,
        money_balance_ok=not money,
        individually_rational_ok=not irrational,
        tolerance_jpy=tolerance,
        failures=tuple(failures + money + irrational),
    )


def _energy_failures(
    lines: Sequence[MemberLine], sold_kwh: Decimal, bought_kwh: Decimal, losses_kwh: Decimal
) -> list[str]:
    out = []
    member_sold = sum((line.p2p_sold_kwh for line in lines), ZERO)
    member_bought = sum((line.p2p_bought_kwh for line in lines), ZERO)
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
    return out


def _money_failures(lines: Sequence[MemberLine]) -> list[str]:
    out = []
    paid = sum((line.p2p_paid_jpy + line.fee_jpy for line in lines), ZERO)
    received = sum((line.p2p_received_jpy for line in lines), ZERO)
    fee = sum((line.fee_jpy for line in lines), ZERO)
    if paid != received + fee:
        out.append(f"money balance: paid {paid} JPY != received {received} + fee {fee} JPY")
    pairs: dict[tuple[str, str], Decimal] = {}
    for line in lines:
        for t in line.trades:
            if t.paid_jpy:
                pairs[(line.member_id, t.counterparty)] = pairs.get((line.member_id, t.counterparty), ZERO) + t.paid_jpy
            if t.received_jpy:
                key = (t.counterparty, line.member_id)
                pairs[key] = pairs.get(key, ZERO) - t.received_jpy
        if sum((t.paid_jpy for t in line.trades), ZERO) != line.p2p_paid_jpy:
            out.append(f"money balance: {line.member_id}'s trades do not add up to its payment")
    for (buyer, seller), rest in sorted(pairs.items()):
        if rest != 0:
            out.append(f"money balance: {buyer} paid {seller} {rest} JPY more than {seller} received")
    return out

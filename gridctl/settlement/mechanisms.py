"""P2P pricing mechanisms, exactly as in domain.md, on plain ``Decimal`` inputs.

``lambda_b`` is the grid retail price and ``lambda_s`` the grid export price [JPY/kWh];
``supply_kwh`` (G) and ``demand_kwh`` (D) are the block's total net surplus and net deficit of
the period [kWh]. Each mechanism returns the pair ``(sell, buy)`` of the papers: the price a
seller receives and a buyer pays for *all* of its net position, the part of which that the
block could not cover itself being traded with the grid.

In gridctl every member pays the utility for its own grid meter, so the settlement needs only
the P2P part of those prices: :func:`p2p_price` decomposes them. For SDR <= 1 a buyer's
``P_buy * D = P_sell * G + lambda_b * (D - G)`` (the grid part at lambda_b), so the P2P kWh
trade at ``P_sell``; for SDR > 1 everything is at lambda_s. For MMR the P2P kWh trade at
``P_mmr`` in all three cases (the remainder is the grid part at lambda_s or lambda_b).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)


def sdr_ratio(supply_kwh: Decimal, demand_kwh: Decimal) -> Decimal | None:
    """Supply-demand ratio G/D [-]; None (meaning infinite) when there is no demand."""
    if demand_kwh <= 0:
        return None
    return supply_kwh / demand_kwh


def sdr_prices(
    lambda_b: Decimal, lambda_s: Decimal, supply_kwh: Decimal, demand_kwh: Decimal
) -> tuple[Decimal, Decimal]:
    """Liu et al. (2017) supply-demand-ratio prices ``(P_sell, P_buy)`` [JPY/kWh].

    For 0 <= SDR <= 1: ``P_sell = lb*ls / ((lb - ls)*SDR + ls)`` and
    ``P_buy = P_sell*SDR + lb*(1 - SDR)``; for SDR > 1 both are ``ls``.
    """
    ratio = sdr_ratio(supply_kwh, demand_kwh)
    if ratio is None or ratio > 1:
        return lambda_s, lambda_s
    denominator = (lambda_b - lambda_s) * ratio + lambda_s
    if denominator == 0:  # lambda_s == 0 and SDR == 0: nobody sells, price is moot
        p_sell = lambda_b
    else:
        p_sell = lambda_b * lambda_s / denominator
    p_buy = p_sell * ratio + lambda_b * (1 - ratio)
    return p_sell, p_buy


def mmr_prices(
    lambda_b: Decimal, lambda_s: Decimal, supply_kwh: Decimal, demand_kwh: Decimal
) -> tuple[Decimal, Decimal]:
    """Long et al. (2017) mid-market-rate prices ``(P_sell, P_buy)`` [JPY/kWh].

    ``P_mmr = (lb + ls)/2``. G = D: both P_mmr. G > D: ``P_buy = P_mmr``,
    ``P_sell = (D*P_mmr + (G-D)*ls)/G``. G < D: ``P_sell = P_mmr``,
    ``P_buy = (G*P_mmr + (D-G)*lb)/D``.
    """
    mid = (lambda_b + lambda_s) / 2
    g, d = supply_kwh, demand_kwh
    if g == d:
        return mid, mid
    if g > d:
        return (d * mid + (g - d) * lambda_s) / g, mid
    return mid, (g * mid + (d - g) * lambda_b) / d


@dataclass(frozen=True)
class Order:
    """One side of the auction: a member's quantity [kWh] and limit price [JPY/kWh]."""

    member_id: str
    quantity_kwh: Decimal
    limit_jpy_per_kwh: Decimal


@dataclass(frozen=True)
class Clearing:
    """Outcome of the uniform-price auction.

    ``price_jpy_per_kwh`` is the pay-as-clear price; ``matched_kwh`` the quantity whose bid is at
    least its ask; ``all_in_the_money`` whether every order was matched.
    """

    price_jpy_per_kwh: Decimal
    matched_kwh: Decimal
    all_in_the_money: bool


def uniform_price_auction(
    asks: list[Order], bids: list[Order], floor: Decimal, cap: Decimal
) -> Clearing:
    """Pay-as-clear double auction: the price is the midpoint of the marginal matched pair.

    Asks are sorted by rising limit, bids by falling limit, and matched unit by unit while the
    bid is at least the ask; the price is the midpoint of the last matched ask and bid, clamped
    to ``[floor, cap]`` [JPY/kWh]. With nothing matched it is the midpoint of the best pair.
    """
    asks = sorted((a for a in asks if a.quantity_kwh > 0), key=lambda o: (o.limit_jpy_per_kwh, o.member_id))
    bids = sorted((b for b in bids if b.quantity_kwh > 0), key=lambda o: (-o.limit_jpy_per_kwh, o.member_id))
    if not asks or not bids:
        return Clearing(_clamp((floor + cap) / 2, floor, cap), ZERO, True)
    i = j = 0
    ask_left, bid_left = asks[0].quantity_kwh, bids[0].quantity_kwh
    matched = ZERO
    last = (asks[0].limit_jpy_per_kwh, bids[0].limit_jpy_per_kwh)
    while i < len(asks) and j < len(bids) and asks[i].limit_jpy_per_kwh <= bids[j].limit_jpy_per_kwh:
        last = (asks[i].limit_jpy_per_kwh, bids[j].limit_jpy_per_kwh)
        step = min(ask_left, bid_left)
        matched += step
        ask_left -= step
        bid_left -= step
        if ask_left == 0:
            i += 1
            ask_left = asks[i].quantity_kwh if i < len(asks) else ZERO
        if bid_left == 0:
            j += 1
            bid_left = bids[j].quantity_kwh if j < len(bids) else ZERO
    total_ask = sum((a.quantity_kwh for a in asks), ZERO)
    total_bid = sum((b.quantity_kwh for b in bids), ZERO)
    price = _clamp((last[0] + last[1]) / 2, floor, cap)
    return Clearing(price, matched, matched == min(total_ask, total_bid))


def _clamp(value: Decimal, low: Decimal, high: Decimal) -> Decimal:
    return max(low, min(high, value))


def p2p_price(
    mechanism: str, lambda_b: Decimal, lambda_s: Decimal, supply_kwh: Decimal, demand_kwh: Decimal
) -> Decimal:
    """The P2P part of the SDR or MMR prices (see the module notes) [JPY/kWh]."""
    if mechanism == "sdr":
        return sdr_prices(lambda_b, lambda_s, supply_kwh, demand_kwh)[0]
    if mechanism == "mmr":
        return (lambda_b + lambda_s) / 2
    raise ValueError(f"mechanism '{mechanism}' has no closed-form price")

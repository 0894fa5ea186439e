"""Wheeling: grid energy a member relays on its links is not a P2P sale.

Per member and period, with ``I``, ``E`` the grid meter import and export and ``bought``,
``sold`` the member's net router position (all [kWh], >= 0, a member either buys or sells):

* own net surplus ``s = E - I + sold - bought`` (the member's own generation less consumption);
* own-surplus sale ``sold_own = min(sold, max(0, s))``: only this is priced as a P2P sale;
* wheeled ``w = sold - sold_own``: grid energy the member only passed on.

``I - w >= 0`` always, so the grid-only bill ``lambda_b * (I + bought - w)`` never prices a
negative import: ``w > 0`` needs ``sold > max(0, s)``, which makes the member a seller
(``bought = 0``). If ``s <= 0`` then ``w = sold`` and ``s <= 0`` reads ``sold <= I - E <= I``.
If ``0 < s < sold`` then ``w = sold - s = I - E <= I``. In both cases ``w <= I - E <= I``.

What each seller delivered (traced along the links, or pro rata) is split between its own
surplus and its wheeled energy in proportion to ``sold_own : w``. A receiver pays the relayer
for wheeled energy at the relayer's own import price per kWh the relayer *sent*
(``lambda_b_relayer * w / delivered`` per delivered kWh: the relayer's link losses included),
capped at the receiver's own ``lambda_b`` per delivered kWh, so it never pays more than the
grid would charge it. What the cap (or energy that never arrived) leaves unpaid is a platform
cost credited to the relayer (``platform_credit_jpy``), so the relayer is exactly whole. There
is no platform fee on wheeled energy.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from gridctl.settlement.allocation import allocate

ZERO = Decimal(0)
#: Energy quantum of the split [kWh] (as the settlement's).
ENERGY_QUANTUM = Decimal("0.000001")
MONEY_QUANTUM = Decimal("0.0001")


def own_sale_kwh(sold_kwh: Decimal, own_surplus_kwh: Decimal) -> Decimal:
    """The part of a net sale [kWh] that is the member's own surplus [kWh]."""
    return min(sold_kwh, max(ZERO, own_surplus_kwh))


@dataclass(frozen=True)
class Split:
    """A period's link energy split into the P2P pool and wheeling [kWh].

    ``own_sold`` and ``wheeled_sent`` by seller; ``pool_bought`` and ``wheeled_received`` by
    buyer (each buyer's sum is its net purchase exactly); ``pool_shares`` and
    ``wheeled_shares`` delivered energy by buyer and origin seller (weights, unrounded).
    Members with nothing in a map are absent from it.
    """

    own_sold: dict[str, Decimal]
    wheeled_sent: dict[str, Decimal]
    pool_bought: dict[str, Decimal]
    wheeled_received: dict[str, Decimal]
    pool_shares: dict[str, dict[str, Decimal]]
    wheeled_shares: dict[str, dict[str, Decimal]]


def split_link_energy(
    sold: dict[str, Decimal], bought: dict[str, Decimal], surplus: dict[str, Decimal],
    shares: dict[str, dict[str, Decimal]],
) -> Split:
    """Split sellers' sales and buyers' purchases between own surplus and wheeling.

    Parameters
    ----------
    sold, bought : dict
        Net router sales and purchases by member [kWh], > 0.
    surplus : dict
        Own net surplus ``s`` of every member [kWh].
    shares : dict
        Delivered energy by buyer and origin seller [kWh].
    """
    own = {m: own_sale_kwh(q, surplus[m]) for m, q in sold.items()}
    wheeled = {m: q - own[m] for m, q in sold.items()}
    pool_w = {b: {s: kwh * own[s] / sold[s] for s, kwh in row.items() if own.get(s, ZERO) > 0}
              for b, row in shares.items()}
    wheel_w = {b: {s: kwh * wheeled[s] / sold[s] for s, kwh in row.items() if wheeled.get(s, ZERO) > 0}
               for b, row in shares.items()}
    received: dict[str, Decimal] = {}
    for b, q in bought.items():
        w_part = sum(wheel_w.get(b, {}).values(), ZERO)
        own_part = sum(pool_w.get(b, {}).values(), ZERO)
        if own_part <= 0:
            received[b] = q if w_part > 0 else ZERO
        elif w_part <= 0:
            received[b] = ZERO
        else:
            received[b] = min(q, (q * w_part / (w_part + own_part)).quantize(ENERGY_QUANTUM, ROUND_HALF_UP))
    pool_bought = {b: q - received[b] for b, q in bought.items() if q - received[b] > 0}
    return Split(
        own_sold={m: q for m, q in own.items() if q > 0},
        wheeled_sent={m: q for m, q in wheeled.items() if q > 0},
        pool_bought=pool_bought,
        wheeled_received={b: q for b, q in received.items() if q > 0},
        pool_shares={b: pool_w.get(b, {}) for b in pool_bought},
        wheeled_shares={b: wheel_w[b] for b in received if received[b] > 0},
    )


@dataclass(frozen=True)
class WheelingLeg:
    """Wheeled energy and money between one receiver and one relayer."""

    receiver: str
    relayer: str
    received_kwh: Decimal
    sent_kwh: Decimal
    paid_jpy: Decimal


@dataclass(frozen=True)
class Wheeling:
    """The period's wheeling: legs, and the platform's credit to each relayer [JPY]."""

    legs: tuple[WheelingLeg, ...]
    credit_jpy: dict[str, Decimal]


def settle_wheeling(split: Split, import_price: dict[str, Decimal]) -> Wheeling:
    """Price every wheeled kWh: relayers made whole at their own import price [JPY/kWh].

    ``import_price`` is every member's own ``lambda_b`` [JPY/kWh].
    """
    relayers, receivers = sorted(split.wheeled_sent), sorted(split.wheeled_received)
    got = {b: allocate(split.wheeled_received[b], [split.wheeled_shares[b].get(r, ZERO) for r in relayers],
                       ENERGY_QUANTUM) for b in receivers}
    sent = {r: allocate(split.wheeled_sent[r], [split.wheeled_shares[b].get(r, ZERO) for b in receivers],
                        ENERGY_QUANTUM) for r in relayers}
    legs, paid_to = [], dict.fromkeys(relayers, ZERO)
    for i, r in enumerate(relayers):
        delivered = sum((got[b][i] for b in receivers), ZERO)
        for j, b in enumerate(receivers):
            kwh, out = got[b][i], sent[r][j]
            if not kwh and not out:
                continue
            rate = min(import_price[r] * split.wheeled_sent[r] / delivered, import_price[b]) if delivered else ZERO
            pay = (rate * kwh).quantize(MONEY_QUANTUM, ROUND_HALF_UP)
            legs.append(WheelingLeg(b, r, kwh, out, pay))
            paid_to[r] += pay
    credit = {}
    for r in relayers:
        whole = (import_price[r] * split.wheeled_sent[r]).quantize(MONEY_QUANTUM, ROUND_HALF_UP)
        if whole > paid_to[r]:
            credit[r] = whole - paid_to[r]
    return Wheeling(tuple(legs), credit)

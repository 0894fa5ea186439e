"""Exact pro-rata splitting of a quantity in fixed quanta (largest-remainder method)."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal


def allocate(total: Decimal, weights: list[Decimal], quantum: Decimal) -> list[Decimal]:
    """Split ``total`` in proportion to ``weights`` so the parts sum to ``total`` exactly.

    Each part is a multiple of ``quantum`` except for the sub-quantum remainder of ``total``
    itself, which goes to the largest weight (so the sum is always exact). Parts are floored to
    the quantum and the remaining quanta go to the largest fractional remainders (ties: first).

    Parameters
    ----------
    total : Decimal
        Quantity to split (kWh or JPY), >= 0.
    weights : list of Decimal
        Non-negative weights; all zero splits evenly.
    quantum : Decimal
        Smallest unit of a part.
    """
    if not weights:
        return []
    weight_sum = sum(weights, Decimal(0))
    if weight_sum <= 0:
        weights, weight_sum = [Decimal(1)] * len(weights), Decimal(len(weights))
    whole = (total / quantum).to_integral_value(rounding=ROUND_FLOOR) * quantum
    exact = [whole * w / weight_sum for w in weights]
    parts = [(e / quantum).to_integral_value(rounding=ROUND_FLOOR) * quantum for e in exact]
    left = int(((whole - sum(parts, Decimal(0))) / quantum).to_integral_value())
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:left]:
        parts[i] += quantum
    biggest = max(range(len(weights)), key=lambda i: (weights[i], -i))
    parts[biggest] += total - whole
    return parts

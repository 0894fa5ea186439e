"""Who supplied whom: trace P2P energy from sellers to buyers along the metered router links.

Proportional sharing: at each router the energy it holds (its own surplus plus what arrived on
its links) is a mix of origins; what leaves on each link and what the member keeps carry that
mix in proportion, and a link delivers its metered received energy with the mix of what was
sent into it. Routers are visited in flow order, so the result needs the link flows of the
period to form no loop. Where tracing is impossible (a link used in both directions in the same
period, or a loop of flows) the caller falls back to pro-rata over the pooled energy.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True)
class LinkFlow:
    """Metered energy of one link in a period [kWh]: ``sent_kwh`` left ``source``'s router,
    ``received_kwh`` arrived at ``target``'s router."""

    source: str
    target: str
    sent_kwh: Decimal
    received_kwh: Decimal


def trace(
    flows: list[LinkFlow], sold_kwh: dict[str, Decimal], bought_kwh: dict[str, Decimal]
) -> dict[str, dict[str, Decimal]] | None:
    """Delivered energy by buyer and origin seller, ``{buyer: {seller: kWh}}``, or None.

    Parameters
    ----------
    flows : list of LinkFlow
        One entry per link and direction with energy; a link must not appear in both directions.
    sold_kwh, bought_kwh : dict
        Net sellers' sent and net buyers' received P2P energy [kWh].

    Returns
    -------
    dict or None
        Unrounded shares; None when the flows contain a loop (not traceable).
    """
    order = _flow_order(flows)
    if order is None:
        return None
    incoming: dict[str, list[LinkFlow]] = defaultdict(list)
    outgoing: dict[str, list[LinkFlow]] = defaultdict(list)
    for f in flows:
        incoming[f.target].append(f)
        outgoing[f.source].append(f)
    arriving: dict[tuple[str, str], dict[str, Decimal]] = {}  # (source, target) -> origin mix
    result: dict[str, dict[str, Decimal]] = {}
    for node in order:
        mix: dict[str, Decimal] = defaultdict(lambda: ZERO)
        if sold_kwh.get(node, ZERO) > 0:
            mix[node] += sold_kwh[node]
        for f in incoming[node]:
            for origin, kwh in arriving[(f.source, f.target)].items():
                mix[origin] += kwh
        pool = sum(mix.values(), ZERO)
        if pool <= 0:
            for f in outgoing[node]:
                arriving[(f.source, f.target)] = {}
            continue
        keep = bought_kwh.get(node, ZERO)
        if keep > 0:
            result[node] = {o: kwh * keep / pool for o, kwh in mix.items() if o != node and kwh > 0}
        for f in outgoing[node]:
            arriving[(f.source, f.target)] = {o: kwh * f.received_kwh / pool for o, kwh in mix.items()}
    return result


def _flow_order(flows: list[LinkFlow]) -> list[str] | None:
    """Routers in flow order (every link's source before its target); None if there is a loop."""
    nodes = {f.source for f in flows} | {f.target for f in flows}
    indegree = {n: 0 for n in nodes}
    for f in flows:
        indegree[f.target] += 1
    ready = sorted(n for n, d in indegree.items() if d == 0)
    order = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for f in flows:
            if f.source == node:
                indegree[f.target] -= 1
                if indegree[f.target] == 0:
                    ready.append(f.target)
        ready.sort()
    return order if len(order) == len(nodes) else None

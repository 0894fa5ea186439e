"""The site seen as the optimizer sees it: node order, tier axis, devices per node, links.

Derived once per call from the validated :class:`~gridctl.config.SiteConfig`; cheap, pure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridctl.config import BatteryDevice, PvInverterDevice, RouterDevice, SiteConfig
from gridctl.controller.switches import shedding_actuated

__all__ = ["LinkInfo", "SiteIndex", "site_index"]


@dataclass(frozen=True)
class LinkInfo:
    """A router link with the legs at both ends.

    Parameters
    ----------
    link_id : str
    from_node, to_node : int
        Node indices; ``flow_kw > 0`` runs from ``from_node`` to ``to_node``.
    from_router, to_router : str
        Router device ids.
    from_leg, to_leg : str
        Leg ids on those routers that carry the link.
    capacity_kw : float
        Smallest of the link's and both legs' capacities [kW].
    efficiency : float
        Fraction of the sent power that arrives [-].
    """

    link_id: str
    from_node: int
    to_node: int
    from_router: str
    to_router: str
    from_leg: str
    to_leg: str
    capacity_kw: float
    efficiency: float


@dataclass(frozen=True, eq=False)
class SiteIndex:
    """Arrays and lookups shared by problem building and setpoint making.

    Parameters
    ----------
    node_ids : tuple of str
        Node order of every (N, ...) array.
    tier_numbers : tuple of int
        Configured tier number of each optimizer tier index; index 0 (critical) maps to 0.
        Optimizer tier ``k >= 1`` is configured tier ``tier_numbers[k]``; higher ``k`` is shed
        earlier (the reverse of ``islanding.shed_order``).
    voll_jpy_per_kwh : ndarray, shape (K,)
        Value of lost load per optimizer tier [JPY/kWh], strictly decreasing.
    node_tier : ndarray of int, shape (N,)
        Optimizer tier index of each node's sheddable share (>= 1).
    critical_share : ndarray, shape (N,)
        Fraction of each node's load the plan may not shed [-]: the critical share, or 1 at a
        node without switches in a site whose shedding is switch-actuated.
    batteries, pv_inverters : tuple of tuple
        Devices per node, in node order.
    routers : tuple of (RouterDevice or None)
        The router of each node.
    links : tuple of LinkInfo
    """

    node_ids: tuple[str, ...]
    tier_numbers: tuple[int, ...]
    voll_jpy_per_kwh: np.ndarray
    node_tier: np.ndarray
    critical_share: np.ndarray
    batteries: tuple[tuple[BatteryDevice, ...], ...]
    pv_inverters: tuple[tuple[PvInverterDevice, ...], ...]
    routers: tuple[RouterDevice | None, ...]
    links: tuple[LinkInfo, ...]

    @property
    def n_nodes(self) -> int:
        """Number of nodes N [-]."""
        return len(self.node_ids)


#: Indexes of the sites seen, by object identity (a site is frozen; the entry keeps it alive
#: so that its id is not reused).  A process controls or simulates a handful of sites.
_CACHE: dict[int, tuple[SiteConfig, SiteIndex]] = {}


def site_index(site: SiteConfig) -> SiteIndex:
    """Index ``site`` for the optimizer's axes (nodes in file order); cached per site, so the
    router-to-node map and the tier axis are built once."""
    hit = _CACHE.get(id(site))
    if hit is not None and hit[0] is site:
        return hit[1]
    if len(_CACHE) > 64:
        _CACHE.clear()
    index = _build_index(site)
    _CACHE[id(site)] = (site, index)
    return index


def _build_index(site: SiteConfig) -> SiteIndex:
    isl = site.islanding
    # Optimizer tier axis: critical first, then shed_order reversed (last shed = lowest k).
    order = list(reversed(isl.shed_order))
    tier_numbers = (0,) + tuple(t.tier for t in order)
    voll = np.array([isl.critical_value_of_lost_load_jpy_per_kwh]
                    + [t.value_of_lost_load_jpy_per_kwh for t in order], dtype=float)
    k_of = {number: k for k, number in enumerate(tier_numbers) if k > 0}
    node_tier = np.array([k_of[n.load.shed_tier] for n in site.nodes], dtype=int)
    actuated = shedding_actuated(site)
    share = np.array([_unsheddable_share(n, actuated) for n in site.nodes], dtype=float)
    return SiteIndex(
        node_ids=tuple(n.id for n in site.nodes),
        tier_numbers=tier_numbers,
        voll_jpy_per_kwh=voll,
        node_tier=node_tier,
        critical_share=share,
        batteries=tuple(tuple(n.batteries) for n in site.nodes),
        pv_inverters=tuple(tuple(n.pv_inverters) for n in site.nodes),
        routers=tuple(n.router for n in site.nodes),
        links=_links(site),
    )


def _unsheddable_share(node, actuated: bool) -> float:  # noqa: ANN001 - a config Node
    """Share of a node's load the plan may not shed: its critical share, or all of it at a node
    without switches in a site whose shedding is ``actuated`` through switches (nothing can
    disconnect that load; a site without any switches keeps the idealised tiers)."""
    if actuated and not node.load.switches:
        return 1.0
    return node.load.critical_share_pct / 100.0


def _links(site: SiteConfig) -> tuple[LinkInfo, ...]:
    node_of: dict[str, int] = {}
    router_of: dict[str, RouterDevice] = {}
    for i, node in enumerate(site.nodes):
        router = node.router
        if router is not None:
            node_of[router.id] = i
            router_of[router.id] = router
    out = []
    for link in site.links:
        ends = []
        for router_id in (link.from_router, link.to_router):
            leg = next(g for g in router_of[router_id].legs if g.link == link.id)
            ends.append(leg)
        out.append(LinkInfo(
            link_id=link.id,
            from_node=node_of[link.from_router],
            to_node=node_of[link.to_router],
            from_router=link.from_router,
            to_router=link.to_router,
            from_leg=ends[0].id,
            to_leg=ends[1].id,
            capacity_kw=min(link.capacity_kw, ends[0].capacity_kw, ends[1].capacity_kw),
            efficiency=link.efficiency_pct / 100.0,
        ))
    return tuple(out)

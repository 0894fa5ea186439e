"""Build the optimizer's :class:`~optimizer.DispatchProblem` from site, state, readings, forecast.

Pure: ``now`` is passed in; prices come from the dated tariffs; nothing is read from a clock,
file or socket.  Money is ``Decimal`` in the tariffs and becomes float only here, for the
optimizer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np

from gridctl.config import SiteConfig
from gridctl.controller.billing import PERIOD_H
from gridctl.controller.topology import SiteIndex, site_index
from gridctl.controller.types import ControllerState, Forecast, Mode, Snapshot
from gridctl.controller.valuation import stored_energy_value_jpy_per_kwh
from gridctl.tariffs import (
    export_price_jpy_per_kwh,
    import_price_jpy_per_kwh,
    import_tier_blocks,
    settlement_period,
    tariff_version,
)
from optimizer import (
    BILLING_GROUPS,
    BatteryData,
    DispatchProblem,
    GridData,
    ImportTiers,
    LinkData,
    Penalties,
    SolverOptions,
    reserve_profile_kwh,
)

#: Hours over which a kWh short of the reserve ahead of a warned outage costs as much as a
#: kWh of critical load lost: a warned outage makes the reserve nearly as binding as the load.
WARNED_RESERVE_HORIZON_H = 24.0

__all__ = [
    "battery_data",
    "build_problem",
    "grid_data",
    "link_data",
    "split_tiers",
    "horizon_steps",
    "plan_start_utc",
    "prepare_problem",
    "price_arrays",
    "step_starts_utc",
]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def plan_start_utc(site: SiteConfig, now: dt.datetime) -> dt.datetime:
    """Start of the plan step holding ``now``.

    Steps divide 30 minutes and JST is a whole-hour offset, so steps align to JST periods.
    """
    if now.tzinfo is None:
        raise ValueError("plan_start_utc.now: datetime must be timezone-aware")
    step_s = site.control.plan_step_min * 60
    elapsed_s = (now - _EPOCH).total_seconds()
    return _EPOCH + dt.timedelta(seconds=(elapsed_s // step_s) * step_s)


def horizon_steps(site: SiteConfig) -> int:
    """Number of plan steps in the configured horizon [-]."""
    return int(round(site.control.horizon_h * 60 / site.control.plan_step_min))


def step_starts_utc(start_utc: dt.datetime, step_s: float, n_steps: int) -> list[dt.datetime]:
    """Start time of each of ``n_steps`` steps of ``step_s`` [s] from ``start_utc``."""
    return [start_utc + dt.timedelta(seconds=step_s * t) for t in range(n_steps)]


def build_problem(site: SiteConfig, state: ControllerState, snapshot: Snapshot,
                  forecast: Forecast, now: dt.datetime) -> DispatchProblem:
    """The dispatch problem for the horizon starting at the step holding ``now``.

    See :func:`prepare_problem` (which also returns the notes).
    """
    return prepare_problem(site, state, snapshot, forecast, now)[0]


def prepare_problem(site: SiteConfig, state: ControllerState, snapshot: Snapshot,
                    forecast: Forecast, now: dt.datetime,
                    ) -> tuple[DispatchProblem, tuple[str, ...]]:
    """Build the dispatch problem and say what had to be assumed.

    Parameters
    ----------
    site : SiteConfig
    state : ControllerState
        Mode, warned outage windows, reserve request, month-to-date import and peak import.
    snapshot : Snapshot
        Latest readings: stored energy, device health, and PV/load for step 0.
    forecast : Forecast
        PV and total load per node [kW]; must use the plan step length and start on a step
        boundary at or before the plan start; the horizon is cut to what it covers.
    now : datetime
        Current time (tz-aware).

    Returns
    -------
    (DispatchProblem, tuple of str)
        The problem; notes on assumptions (unknown stored energy, unhealthy devices...).

    Raises
    ------
    ValueError
        The forecast does not fit the plan (step length, nodes, start).
    gridctl.tariffs.TariffLookupError
        A node's tariff has no version valid on a day of the horizon.
    """
    idx = site_index(site)
    step_s = float(site.control.plan_step_min * 60)
    start = plan_start_utc(site, now)
    pv_kw, total_kw = _forecast_window(idx, forecast, start, step_s, horizon_steps(site))
    n_steps = pv_kw.shape[1]
    starts = step_starts_utc(start, step_s, n_steps)
    notes: list[str] = []
    pv_kw = _pv_with_health(idx, snapshot, pv_kw, notes)
    total_kw = _load_step0(idx, snapshot, _with_peak_margin(site, total_kw))
    load_kw = split_tiers(idx, total_kw)
    imp, exp, tiers = price_arrays(site, state, starts)
    available = _grid_available(site, state, starts, step_s)
    battery = battery_data(site, idx, snapshot, imp, notes, state)
    reserve = _reserve(site, state, load_kw[:, 0, :], starts, step_s, available, battery, notes)
    ctl = site.control
    problem = DispatchProblem(
        node_ids=idx.node_ids,
        step_s=step_s,
        pv_available_kw=pv_kw,
        pv_curtailable=np.array([len(p) > 0 for p in idx.pv_inverters]),
        load_kw=load_kw,
        value_of_lost_load_jpy_per_kwh=idx.voll_jpy_per_kwh,
        grid=grid_data(site, idx, state, imp, exp, available, starts, tiers),
        battery=battery,
        links=link_data(idx, snapshot, notes),
        reserve_kwh=reserve,
        penalties=_penalties(site, state, starts),
        options=SolverOptions(time_limit_s=ctl.solver_time_limit_s,
                              mip_rel_gap=ctl.mip_gap_pct / 100.0, threads=ctl.solver_threads),
    )
    return problem, tuple(notes)


def _penalties(site: SiteConfig, state: ControllerState, starts: list[dt.datetime]) -> Penalties:
    """The optimizer's slack prices: the default ones, but ahead of a warned outage a kWh
    short of the reserve for an hour costs the critical value of lost load over
    :data:`WARNED_RESERVE_HORIZON_H` (the batteries fill up while the grid is there)."""
    base = Penalties()
    lead = dt.timedelta(hours=site.islanding.warned_reserve_hours_h)
    end = starts[-1] if starts else None
    if end is None or not any(starts[0] <= w.end_utc and w.start_utc <= end + lead
                              for w in state.outage_windows):
        return base
    warned = site.islanding.critical_value_of_lost_load_jpy_per_kwh / WARNED_RESERVE_HORIZON_H
    return replace(base, reserve_shortfall_jpy_per_kwh_h=max(
        base.reserve_shortfall_jpy_per_kwh_h, warned))


def _forecast_window(idx: SiteIndex, forecast: Forecast, start: dt.datetime, step_s: float,
                     n_max: int) -> tuple[np.ndarray, np.ndarray]:
    if abs(forecast.step_s - step_s) > 1e-9:
        raise ValueError(f"forecast.step_s: {forecast.step_s} s differs from the plan step "
                         f"{step_s} s")
    missing = [n for n in idx.node_ids if n not in forecast.node_ids]
    if missing:
        raise ValueError(f"forecast.node_ids: no forecast for node '{missing[0]}'")
    offset_s = (start - forecast.start_utc).total_seconds()
    offset = int(round(offset_s / step_s))
    if offset < 0 or abs(offset * step_s - offset_s) > 1e-6 or offset >= forecast.n_steps:
        raise ValueError(f"forecast.start_utc: {forecast.start_utc.isoformat()} does not cover "
                         f"the plan start {start.isoformat()} on a step boundary")
    rows = [forecast.node_ids.index(n) for n in idx.node_ids]
    stop = min(offset + n_max, forecast.n_steps)
    return (np.array(forecast.pv_kw[rows, offset:stop]),
            np.array(forecast.load_kw[rows, offset:stop]))


def _pv_with_health(idx: SiteIndex, snapshot: Snapshot, pv_kw: np.ndarray,
                    notes: list[str]) -> np.ndarray:
    """Scale PV by the share of healthy inverters (by AC rating); step 0 from the reading."""
    out = pv_kw.copy()
    for n, inverters in enumerate(idx.pv_inverters):
        rating = sum(d.rating.ac_kw for d in inverters)
        if not inverters or rating <= 0:
            out[n] = 0.0
            continue
        healthy = sum(d.rating.ac_kw for d in inverters if snapshot.device_ok(d.id))
        if healthy < rating:
            notes.append(f"node {idx.node_ids[n]}: PV inverters at {healthy:g} of {rating:g} kW "
                         "healthy; PV forecast scaled down")
        out[n] *= healthy / rating
        measured = snapshot.node(idx.node_ids[n]).pv_kw
        if measured is not None and healthy > 0:
            # Persistence is the best forecast for the step under way.
            out[n, 0] = min(max(measured, 0.0), healthy)
    return out


def _with_peak_margin(site: SiteConfig, total_kw: np.ndarray) -> np.ndarray:
    """Load forecast [kW] with ``control.peak_margin_pct`` more at members with a demand
    charge: their peak shaving must hold when the load comes in above the forecast."""
    factor = np.array([1.0 + site.control.peak_margin_pct / 100.0
                       if n.contract.demand_charge_jpy_per_kw_month > 0 else 1.0 for n in site.nodes])
    return total_kw * factor[:, None]


def _load_step0(idx: SiteIndex, snapshot: Snapshot, total_kw: np.ndarray) -> np.ndarray:
    out = total_kw.copy()
    for n, node_id in enumerate(idx.node_ids):
        measured = snapshot.node(node_id).load_kw
        if measured is not None:
            out[n, 0] = max(measured, 0.0)
    return out


def split_tiers(idx: SiteIndex, total_kw: np.ndarray) -> np.ndarray:
    """Split total load [kW] into tiers: the critical share in tier 0, the rest in the node's."""
    n_nodes, n_steps = total_kw.shape
    load = np.zeros((n_nodes, len(idx.tier_numbers), n_steps))
    load[:, 0, :] = total_kw * idx.critical_share[:, None]
    load[np.arange(n_nodes), idx.node_tier, :] = total_kw * (1.0 - idx.critical_share[:, None])
    return load


def _month_key(at: dt.datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m")


def price_arrays(site: SiteConfig, state: ControllerState, starts_utc: list[dt.datetime],
                 ) -> tuple[np.ndarray, np.ndarray, ImportTiers]:
    """Import and export prices per node and step [JPY/kWh] and the tier blocks ahead.

    The import price of a step is the tariff's marginal price at the month-to-date import of
    its billing month at horizon start (this month: the node's import so far; next month:
    none); the tiers still ahead in each month are :class:`optimizer.ImportTiers` blocks, so
    the optimizer pays each kWh at the tier it really falls in.  The export price is the
    buy-back tariff's (0 without one).
    """
    zone = ZoneInfo(site.site.timezone)
    n_steps = len(starts_utc)
    imp = np.zeros((len(site.nodes), n_steps))
    exp = np.zeros((len(site.nodes), n_steps))
    months = [_month_key(s, zone) for s in starts_utc]
    first = months[0] if months else ""
    group = np.array([0 if m == first else 1 for m in months], dtype=int)
    local_dates = [s.astimezone(zone).date() for s in starts_utc]
    blocks: list[list[list[tuple[float, float]]]] = []
    cache: dict[tuple, np.ndarray] = {}
    for n, node in enumerate(site.nodes):
        so_far = state.billing.node(node.id, first).month_import_kwh
        month_kwh = (Decimal(str(round(float(so_far), 3))), Decimal(0))
        per_group = []
        for g in range(BILLING_GROUPS):
            steps = np.flatnonzero(group == g)
            day = local_dates[steps[0]] if len(steps) else local_dates[0]
            tariff = tariff_version(site, node.contract.tariff, day)
            per_group.append([(np.inf if w is None else float(w), float(c))
                              for w, c in import_tier_blocks(tariff, month_kwh[g])])
            key = ("import", node.contract.tariff, month_kwh[g], tuple(steps.tolist()))
            if key not in cache:
                cache[key] = np.array([float(import_price_jpy_per_kwh(
                    tariff_version(site, node.contract.tariff, local_dates[t]), starts_utc[t],
                    zone, month_kwh[g])) for t in steps])
            imp[n, steps] = cache[key]
        blocks.append(per_group)
        buyback = node.contract.buyback_tariff
        if buyback is not None:
            key = ("export", buyback)
            if key not in cache:
                cache[key] = np.array([
                    float(export_price_jpy_per_kwh(tariff_version(site, buyback, day)))
                    for day in local_dates])
            exp[n] = cache[key]
    return imp, exp, _tiers(blocks, group)


def _tiers(blocks: list[list[list[tuple[float, float]]]], group: np.ndarray) -> ImportTiers:
    """Blocks per node and group padded to one length (zero-width blocks before the last)."""
    n_blocks = max(len(b) for per_group in blocks for b in per_group)
    width = np.zeros((len(blocks), BILLING_GROUPS, n_blocks))
    incr = np.zeros_like(width)
    for n, per_group in enumerate(blocks):
        for g, b in enumerate(per_group):
            pad = n_blocks - len(b)
            width[n, g, :len(b) - 1] = [w for w, _ in b[:-1]]
            width[n, g, -1] = np.inf
            incr[n, g, :len(b) - 1] = [c for _, c in b[:-1]]
            incr[n, g, len(b) - 1:] = b[-1][1]
            if pad:  # zero-width blocks keep the increments non-decreasing
                incr[n, g, len(b) - 1:-1] = b[-1][1]
    return ImportTiers(group, width, incr)


def _grid_available(site: SiteConfig, state: ControllerState, starts: list[dt.datetime],
                    step_s: float) -> np.ndarray:
    """Grid availability per step from the mode and the warned outage windows."""
    step = dt.timedelta(seconds=step_s)
    available = np.array([
        not any(w.start_utc < s + step and s < w.end_utc for w in state.outage_windows)
        for s in starts], dtype=bool)
    if state.mode is Mode.PLANNED_ISLANDING:
        available[0] = False
    elif state.mode is Mode.ISLANDED:
        now = starts[0]
        planned = [w for w in state.outage_windows if w.start_utc <= now + step and now < w.end_utc]
        if planned:
            # A warned outage: the grid is expected back after the window (plus the delay).
            back = max(w.end_utc for w in planned) + dt.timedelta(
                seconds=site.islanding.reconnect_delay_s)
            available &= np.array([s >= back for s in starts])
        else:
            # Unplanned: nobody knows when the grid returns, so plan for the whole horizon.
            available[:] = False
    elif state.mode is Mode.RECONNECTING:
        since = state.grid_healthy_since_utc or starts[0]
        back = since + dt.timedelta(seconds=site.islanding.reconnect_delay_s)
        available &= np.array([s >= back for s in starts])
    return available


def grid_data(site: SiteConfig, idx: SiteIndex, state: ControllerState, imp: np.ndarray,
              exp: np.ndarray, available: np.ndarray, starts: list[dt.datetime] | None = None,
              tiers: ImportTiers | None = None) -> GridData:
    """Connection limits, prices, tiers and the demand-charge context of each node.

    A node with a demand charge pays, in the plan, for every kW its 30-minute average import
    would rise above this month's peak so far, at the monthly rate times the months that
    peak can be billed for (``demand_window_months``): one bad half hour can set the
    contracted demand for a year.  Raising this month's peak is priced so even while it stays
    below the contracted demand of earlier months, because those months leave the window
    one by one: the controller never raises a demand-charged peak above what the member's own
    load already set (the guard of :class:`optimizer.GridData` caps grid charging there).
    """
    imp_limit = np.zeros(idx.n_nodes)
    exp_limit = np.zeros(idx.n_nodes)
    weight, basis, so_far = np.zeros(idx.n_nodes), np.zeros(idx.n_nodes), np.zeros(idx.n_nodes)
    month = _month_key(starts[0], ZoneInfo(site.site.timezone)) if starts else ""
    for n, node in enumerate(site.nodes):
        contract, billing = node.contract, state.billing.node(node.id, month)
        weight[n] = contract.demand_charge_jpy_per_kw_month * contract.demand_window_months
        basis[n] = billing.month_peak_kw if billing.month == month else 0.0
        so_far[n] = billing.period_import_kwh if billing.month == month else 0.0
        if node.grid is None:
            continue
        leg_cap = min((leg.capacity_kw for leg in (idx.routers[n].legs if idx.routers[n] else [])
                       if leg.kind == "grid"), default=float("inf"))
        imp_limit[n] = min(node.grid.import_limit_kw, leg_cap)
        exp_limit[n] = min(node.grid.export_limit_kw, leg_cap)
    return GridData(
        import_price_jpy_per_kwh=imp,
        export_price_jpy_per_kwh=exp,
        import_limit_kw=imp_limit,
        export_limit_kw=exp_limit,
        available=available,
        demand_charge_jpy_per_kw=weight,
        peak_import_so_far_kw=basis,
        period_of_step=None if starts is None else _periods(starts),
        period_import_so_far_kwh=so_far,
        tiers=tiers,
        guard_lifted=None if starts is None else _warned_soon(site, state, starts),
    )


def _warned_soon(site: SiteConfig, state: ControllerState, starts: list[dt.datetime]) -> np.ndarray:
    """Steps from which a warned outage starts within ``warned_reserve_hours_h`` [bool]."""
    lead = dt.timedelta(hours=site.islanding.warned_reserve_hours_h)
    return np.array([any(s <= w.start_utc <= s + lead for w in state.outage_windows)
                     for s in starts], dtype=bool)


def _periods(starts: list[dt.datetime]) -> np.ndarray:
    """Demand period of each step, 0 for the one under way (JST 30-minute periods)."""
    firsts = [settlement_period(s)[0] for s in starts]
    return np.array([int(round((f - firsts[0]).total_seconds() / (PERIOD_H * 3600.0)))
                     for f in firsts], dtype=int)


def battery_data(site: SiteConfig, idx: SiteIndex, snapshot: Snapshot, imp: np.ndarray,
                 notes: list[str], state: ControllerState | None = None) -> BatteryData:
    """Healthy batteries of each node lumped into one; stored energy from the readings, its
    grid-origin part from the state."""
    n_nodes = idx.n_nodes
    cols = {k: np.zeros(n_nodes) for k in ("stored", "lo", "hi", "ch", "dis", "wear", "term", "grey",
                                           "self")}
    eta_c, eta_d = np.ones(n_nodes), np.ones(n_nodes)
    for n, devices in enumerate(idx.batteries):
        node_id = idx.node_ids[n]
        healthy = [d for d in devices if snapshot.device_ok(d.id)]
        if len(healthy) < len(devices):
            notes.append(f"node {node_id}: {len(devices) - len(healthy)} battery device(s) "
                         "unhealthy; left out of the plan")
        if not healthy:
            continue
        cap = np.array([d.rating.capacity_kwh for d in healthy])
        share = cap / cap.sum()
        cols["lo"][n] = sum(d.rating.capacity_kwh * d.rating.soc_min_pct / 100 for d in healthy)
        cols["hi"][n] = sum(d.rating.capacity_kwh * d.rating.soc_max_pct / 100 for d in healthy)
        cols["ch"][n] = sum(d.rating.max_charge_kw for d in healthy)
        cols["dis"][n] = sum(d.rating.max_discharge_kw for d in healthy)
        eta_c[n] = float(share @ [d.rating.charge_efficiency_pct / 100 for d in healthy])
        eta_d[n] = float(share @ [d.rating.discharge_efficiency_pct / 100 for d in healthy])
        cols["wear"][n] = float(share @ [d.rating.wear_cost_jpy_per_kwh for d in healthy])
        cols["self"][n] = float(share @ [d.rating.self_discharge_pct_per_day for d in healthy]) / 2400.0
        cols["stored"][n] = _stored_kwh(snapshot, node_id, float(cap.sum()), cols["lo"][n], notes)
        cols["term"][n] = stored_energy_value_jpy_per_kwh(eta_d[n], float(imp[n].min()),
                                                          cols["wear"][n])
        if state is not None:
            cols["grey"][n] = min(max(float(state.grey_kwh.get(node_id, 0.0)), 0.0), cols["stored"][n])
    return BatteryData(
        stored_kwh=cols["stored"], soc_min_kwh=cols["lo"], soc_max_kwh=cols["hi"],
        charge_max_kw=cols["ch"], discharge_max_kw=cols["dis"],
        charge_efficiency=eta_c, discharge_efficiency=eta_d,
        wear_cost_jpy_per_kwh=cols["wear"], terminal_value_jpy_per_kwh=cols["term"],
        grid_export_allowed=np.array([n.contract.battery_export_allowed for n in site.nodes]),
        grey_stored_kwh=cols["grey"], self_discharge_per_h=cols["self"],
    )


def _stored_kwh(snapshot: Snapshot, node_id: str, capacity_kwh: float, floor_kwh: float,
                notes: list[str]) -> float:
    reading = snapshot.node(node_id)
    if reading.stored_kwh is not None:
        return max(float(reading.stored_kwh), 0.0)
    if reading.soc_pct is not None:
        return max(float(reading.soc_pct), 0.0) / 100.0 * capacity_kwh
    notes.append(f"node {node_id}: stored energy not measured; assumed at soc_min "
                 f"({floor_kwh:.2f} kWh)")
    return floor_kwh


def _reserve(site: SiteConfig, state: ControllerState, critical_kw: np.ndarray,
             starts: list[dt.datetime], step_s: float, available: np.ndarray,
             battery: BatteryData, notes: list[str]) -> np.ndarray:
    """Block reserve [kWh]: critical load x hours, raised by a request and ahead of warnings.

    ``R_t = H_t * mean(block critical kW)`` with ``H_t`` the policy's ``reserve_hours_h``,
    raised to an active operator request and to ``warned_reserve_hours_h`` when a warned
    outage starts within that many hours after step ``t``; never below the critical energy
    of the rest of a warned window; zero in islanded steps; capped at the block's storage.
    """
    isl = site.islanding
    step = dt.timedelta(seconds=step_s)
    hours = np.full(len(starts), isl.reserve_hours_h)
    req = state.reserve_request
    if req is not None:
        hours = np.where([s < req.until_utc for s in starts], np.maximum(hours, req.hours_h), hours)
    lead = dt.timedelta(hours=isl.warned_reserve_hours_h)
    warned_soon = np.array([any(s + step <= w.start_utc <= s + step + lead
                                for w in state.outage_windows) for s in starts], dtype=bool)
    hours = np.where(warned_soon, np.maximum(hours, isl.warned_reserve_hours_h), hours)
    block_kw = float(critical_kw.sum(axis=0).mean())
    reserve = hours * block_kw
    in_window = np.array([any(w.start_utc < s + step and s < w.end_utc
                              for w in state.outage_windows) for s in starts], dtype=bool)
    reserve = np.maximum(reserve, reserve_profile_kwh(critical_kw, step_s, 0.0, in_window))
    reserve[~available] = 0.0
    cap_kwh = float(battery.soc_max_kwh.sum())
    if np.any(reserve > cap_kwh):
        notes.append(f"reserve capped at the block's storage ({cap_kwh:.1f} kWh)")
        reserve = np.minimum(reserve, cap_kwh)
    return reserve


def link_data(idx: SiteIndex, snapshot: Snapshot, notes: list[str]) -> LinkData:
    """Router links; a link whose router at either end is unhealthy carries nothing."""
    caps = []
    for link in idx.links:
        ok = snapshot.device_ok(link.from_router) and snapshot.device_ok(link.to_router)
        if not ok:
            notes.append(f"link {link.link_id}: a router is unhealthy; link left out of the plan")
        caps.append(link.capacity_kw if ok else 0.0)
    return LinkData(
        from_node=np.array([link.from_node for link in idx.links], dtype=int),
        to_node=np.array([link.to_node for link in idx.links], dtype=int),
        capacity_kw=np.array(caps, dtype=float),
        efficiency=np.array([link.efficiency for link in idx.links], dtype=float),
    )

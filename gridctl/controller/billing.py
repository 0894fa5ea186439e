"""The billing context the controller keeps from its own readings: month-to-date import (which
tier price a kWh costs) and the demand peaks (what a kW of 30-minute demand costs).

Pure: each observation of the block's readings folds the grid import since the last one into
the open JST 30-minute period; a closed period's average import may raise the month's peak; a
new month starts the tiers again and files the old month's peak, of which the last
``demand_window_months - 1`` still count for the contracted demand (Japanese high-voltage
contracts under 500 kW: the highest 30-minute demand of this month and the past 11 months).

Import comes from each node's cumulative grid-import counter when the snapshot carries one
(a missed poll loses nothing, a counter that goes back is taken as a meter reset), otherwise
from the measured grid power times the time since the last observation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Mapping
from zoneinfo import ZoneInfo

from gridctl.config import SiteConfig
from gridctl.controller.types import BillingState, NodeBilling, Snapshot
from gridctl.tariffs import settlement_period

__all__ = ["BillingState", "NodeBilling", "demand_basis_kw", "observe_billing", "opening_billing"]

#: Length of a demand period [h].
PERIOD_H = 0.5
#: Longest gap between two observations over which power is integrated [s]; beyond it the
#: import of the gap is unknown (a counter still covers it).
MAX_INTEGRATION_S = 3600.0


def _month(site: SiteConfig, at_utc: dt.datetime) -> str:
    return at_utc.astimezone(ZoneInfo(site.site.timezone)).strftime("%Y-%m")


def demand_basis_kw(billing: NodeBilling, window_months: int) -> float:
    """Contracted demand now [kW]: this month's peak and the peaks of the past
    ``window_months - 1`` months."""
    past = billing.past_peaks_kw[-(window_months - 1):] if window_months > 1 else ()
    return max([billing.month_peak_kw] + [kw for _, kw in past])


def opening_billing(site: SiteConfig, at_utc: dt.datetime, month_import_kwh: Mapping[str, float],
                    demand_basis_kw: Mapping[str, float]) -> BillingState:
    """The context of a controller that starts at ``at_utc``: the import earlier in the month
    (from the retailer or the ledger) and the contracted demand in force [kW], filed as the
    peak of the previous month so that it counts over the contract's window."""
    month = _month(site, at_utc)
    previous = (at_utc.astimezone(ZoneInfo(site.site.timezone)).replace(day=1)
                - dt.timedelta(days=1)).strftime("%Y-%m")
    nodes = {}
    for node in site.nodes:
        basis = float(demand_basis_kw.get(node.id, 0.0))
        nodes[node.id] = NodeBilling(month, float(month_import_kwh.get(node.id, 0.0)),
                                     past_peaks_kw=((previous, basis),) if basis > 0 else ())
    return BillingState(nodes, None)


def _import_since(billing: NodeBilling, counter_kwh: float | None, grid_kw: float | None,
                  gap_s: float | None) -> tuple[float, float | None]:
    """Grid import since the last observation [kWh] and the counter to remember."""
    if counter_kwh is not None:
        last = billing.counter_kwh
        if last is None or counter_kwh < last:  # first sight, or a meter reset: re-base
            return 0.0, counter_kwh
        return counter_kwh - last, counter_kwh
    if grid_kw is None or gap_s is None or gap_s <= 0 or gap_s > MAX_INTEGRATION_S:
        return 0.0, billing.counter_kwh
    return max(grid_kw, 0.0) * gap_s / 3600.0, billing.counter_kwh


def _close_period(billing: NodeBilling, month: str) -> NodeBilling:
    """File the open period's average; start a new month's figures when ``month`` is new."""
    peak = max(billing.month_peak_kw, billing.period_import_kwh / PERIOD_H)
    if month == billing.month:
        return replace(billing, month_peak_kw=peak, period_import_kwh=0.0)
    past = (billing.past_peaks_kw + ((billing.month, peak),))[-11:]
    return replace(billing, month=month, month_import_kwh=0.0, month_peak_kw=0.0,
                   period_import_kwh=0.0, past_peaks_kw=past)


def _observe_node(site: SiteConfig, billing: NodeBilling, delta_kwh: float, counter: float | None,
                  now: dt.datetime) -> NodeBilling:
    start, _ = settlement_period(now)
    billing = replace(billing, counter_kwh=counter,
                      month_import_kwh=billing.month_import_kwh + delta_kwh,
                      period_import_kwh=billing.period_import_kwh + delta_kwh)
    if billing.period_start_utc is None:
        return replace(billing, period_start_utc=start)
    if start > billing.period_start_utc:
        billing = _close_period(billing, _month(site, start))
        return replace(billing, period_start_utc=start)
    return billing


def observe_billing(site: SiteConfig, billing: BillingState, snapshot: Snapshot) -> BillingState:
    """Fold one snapshot into the billing context (a snapshot not newer than the last one
    changes nothing, so observing twice is harmless).

    The import since the last observation belongs to the period that was open then; when
    the snapshot lies in a later period, that one is closed first.
    """
    now = snapshot.at_utc
    if billing.observed_utc is not None and now <= billing.observed_utc:
        return billing
    gap_s = None if billing.observed_utc is None else (now - billing.observed_utc).total_seconds()
    month = _month(site, now)
    nodes = {}
    for node in site.nodes:
        current = billing.node(node.id, month)
        reading = snapshot.node(node.id)
        delta, counter = _import_since(current, reading.grid_import_kwh, reading.grid_kw, gap_s)
        nodes[node.id] = _observe_node(site, current, delta, counter, now)
    return BillingState(nodes, now)

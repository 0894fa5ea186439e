"""Where stored energy came from: the grid-origin ("grey") part of each battery's energy.

A member may send over a router link only its own surplus: PV, or battery energy that came
from PV or P2P ("green").  Energy it imported from the utility and stored stays grey and may
serve only its own load.  The optimizer plans with both parts
(:class:`optimizer.BatteryData.grey_stored_kwh`); this module keeps the grey part up to date
from readings, with the same attribution rules the simulator's key figures use:

* charging while the node imports is grey up to the import (the grid is taken to charge the
  battery first: the cautious reading); other charging is green; while islanded all
  charging is green (there is no grid energy);
* discharging while the node sends net over its links is green first (the plan sends only
  green energy; where green runs short the key figures count the rest as resold);
  otherwise grey first (grid energy is best used for the node's own load).

Pure: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GreyStep", "grey_step"]

class GreyStep:
    """Result of :func:`grey_step`: the grey energy after the interval and the grey parts of
    charge and discharge during it (arrays over nodes, [kWh] and [kW])."""

    __slots__ = ("grey_kwh", "charge_grey_kw", "discharge_grey_kw")

    def __init__(self, grey_kwh: np.ndarray, charge_grey_kw: np.ndarray,
                 discharge_grey_kw: np.ndarray) -> None:
        self.grey_kwh = grey_kwh
        self.charge_grey_kw = charge_grey_kw
        self.discharge_grey_kw = discharge_grey_kw


def grey_step(grey_kwh: np.ndarray, stored_end_kwh: np.ndarray, battery_kw: np.ndarray,
              grid_kw: np.ndarray, net_send_kw: np.ndarray, hours: float,
              charge_efficiency: np.ndarray, discharge_efficiency: np.ndarray,
              grid_available: bool) -> GreyStep:
    """Advance the grey stored energy over one interval of ``hours`` [h].

    Parameters
    ----------
    grey_kwh : ndarray (N,)
        Grey stored energy at the start [kWh].
    stored_end_kwh : ndarray (N,)
        Measured stored energy at the end [kWh] (NaN when unknown): grey never exceeds it.
    battery_kw, grid_kw, net_send_kw : ndarray (N,)
        Interval averages [kW]: battery (positive discharging), grid (positive importing),
        link sending minus receiving (positive sending).  NaN counts as 0.
    charge_efficiency, discharge_efficiency : ndarray (N,)
        One-way efficiencies [-].
    grid_available : bool
        False while islanded (then all charging is green).
    """
    bat = np.nan_to_num(np.asarray(battery_kw, float))
    grid = np.nan_to_num(np.asarray(grid_kw, float))
    send = np.nan_to_num(np.asarray(net_send_kw, float))
    charge, discharge = np.maximum(-bat, 0.0), np.maximum(bat, 0.0)
    importing = np.maximum(grid, 0.0) if grid_available else np.zeros_like(grid)
    charge_grey = np.minimum(charge, importing)
    grey = np.maximum(np.asarray(grey_kwh, float), 0.0)
    # what the grey part can give at the AC side over the interval [kW]
    grey_kw_max = grey * discharge_efficiency / hours if hours > 0 else np.zeros_like(grey)
    stored = np.asarray(stored_end_kwh, float)
    # stored energy at the start; unknown: taken as ample green (no resale is made up)
    total_before = np.where(np.isnan(stored), np.inf,
                            stored + hours * (discharge / discharge_efficiency - charge * charge_efficiency))
    green_kw_max = np.maximum(total_before - grey, 0.0) * discharge_efficiency / hours if hours > 0 \
        else np.zeros_like(grey)
    sending = send > 1e-6
    discharge_grey = np.where(sending, np.minimum(np.maximum(discharge - green_kw_max, 0.0), grey_kw_max),
                              np.minimum(discharge, grey_kw_max))
    after = grey + hours * (charge_efficiency * charge_grey - discharge_grey / discharge_efficiency)
    cap = np.where(np.isnan(stored), np.inf, np.maximum(stored, 0.0))
    return GreyStep(np.clip(after, 0.0, cap), charge_grey, discharge_grey)

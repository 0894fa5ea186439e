"""Where stored energy came from: the grid-origin ("grey") part of each battery's energy.

A member may send over a router link only its own surplus: PV, or battery energy that came
from PV or P2P ("green").  Energy it imported from the utility and stored stays grey and may
serve only its own load.  The optimizer plans with both parts
(:class:`optimizer.BatteryData.grey_stored_kwh`); this module keeps the grey part up to date
from readings, with the same attribution rules the simulator's key figures use:

* charging while the node imports is grey up to the import (the grid is taken to charge the
  battery first: the cautious reading); other charging is green; while islanded all
  charging is green (there is no grid energy);
* discharging is grey first for what the node keeps (its own load) and green for what it
  sends net over its links (a send must be backed by green energy; where green runs short
  the key figures count the rest as resold).

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
    kept = np.maximum(discharge - np.maximum(send, 0.0), 0.0)  # only what is not sent is grey
    discharge_grey = np.minimum(kept, grey_kw_max)
    after = grey + hours * (charge_efficiency * charge_grey - discharge_grey / discharge_efficiency)
    stored = np.asarray(stored_end_kwh, float)
    cap = np.where(np.isnan(stored), np.inf, np.maximum(stored, 0.0))
    return GreyStep(np.clip(after, 0.0, cap), charge_grey, discharge_grey)

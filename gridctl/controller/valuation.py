"""What a kWh left in a battery is worth: one rule for the optimizer's terminal value and the
simulator's stored-energy credit, so that plans and key figures price it alike."""

from __future__ import annotations

__all__ = ["stored_energy_value_jpy_per_kwh"]


def stored_energy_value_jpy_per_kwh(discharge_efficiency: float, cheapest_import_jpy_per_kwh: float,
                                    wear_jpy_per_kwh: float) -> float:
    """Value of one stored kWh [JPY/kWh].

    A stored kWh later displaces ``discharge_efficiency`` kWh of import.  It is valued at the
    cheapest import price ahead [JPY/kWh] less the wear of discharging it [JPY/kWh], never
    below zero: so charging from the grid only to hold energy at the end never pays, and a
    comparison of runs that end with different amounts in store is not swayed by a price
    that nobody would pay.
    """
    return max(discharge_efficiency * cheapest_import_jpy_per_kwh - wear_jpy_per_kwh, 0.0)

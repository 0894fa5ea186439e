"""Guards every driver applies to what a device reports: garbage becomes a note, never a value.

Pure functions shared by the SunSpec and ECHONET Lite drivers.
"""

from __future__ import annotations

from drivers.capabilities import EnergyCounters

#: The last counters a device reported: (supplied, absorbed) [kWh], None when never read.
LastCounters = tuple[float | None, float | None]


def plausible_power_kw(power_kw: float | None, bound_kw: float | None, notes: list[str]) -> float | None:
    """``power_kw``, or None with a note when it is beyond the plausibility bound (garbage)."""
    if power_kw is not None and bound_kw is not None and abs(power_kw) > bound_kw:
        notes.append(f"power {power_kw:.3f} kW beyond the plausible {bound_kw:g} kW, dropped")
        return None
    return power_kw


def monotonic_counters(supplied_kwh: float | None, absorbed_kwh: float | None, last: LastCounters,
                       notes: list[str]) -> tuple[EnergyCounters, LastCounters]:
    """The counters with any that went backwards (garbage or a device reset) dropped with a
    note, and the last good values to compare the next read with."""
    checked: list[float | None] = []
    for label, now, before in (("supplied", supplied_kwh, last[0]), ("absorbed", absorbed_kwh, last[1])):
        if now is not None and before is not None and now < before:
            notes.append(f"{label} counter went backwards ({before} -> {now} kWh), dropped")
            now = None
        checked.append(now)
    kept = (checked[0] if checked[0] is not None else last[0],
            checked[1] if checked[1] is not None else last[1])
    return EnergyCounters(supplied_kwh=checked[0], absorbed_kwh=checked[1]), kept

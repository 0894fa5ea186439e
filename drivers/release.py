"""Hand a device back to its own control: the one release the daemon and ``gridctl release`` use."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from drivers.capabilities import WritesBatteryPower, WritesLegPower, WritesPvLimit


async def release_driver(driver: Any, link_leg_ids: Iterable[str], revert_s: float) -> None:  # noqa: ANN401
    """Battery power and PV limit released (the device's own control, ``revert_s`` for devices
    with a revert timer) and every router link leg in ``link_leg_ids`` unset; what a driver
    cannot do is skipped. Device errors propagate."""
    if isinstance(driver, WritesBatteryPower):
        await driver.write_battery_power_kw(None, revert_s)
    if isinstance(driver, WritesPvLimit):
        await driver.write_pv_limit_kw(None, revert_s)
    if isinstance(driver, WritesLegPower):
        for leg_id in link_leg_ids:
            await driver.write_leg_power_kw(leg_id, None)

"""``gridctl commission probe``: prove each configured device's wiring, identity and signs.

For every device of the chosen nodes: connect, identify, compare with the configuration
(models, ratings, serial), read live values twice and check plausibility, signs and counter
monotonicity, confirm a fail-safe (revert timer or heartbeat) exists, and optionally run a
short, time-limited battery charge/discharge test that proves the sign and the response and
then hands control back.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from drivers.capabilities import DeviceReading, SwitchesLoads
from drivers.echonet.devices import EchonetDevice
from drivers.errors import DeviceError
from drivers.opcua.router import OpcUaRouter
from drivers.relay.modbus_board import ModbusRelayBoard
from drivers.sunspec.devices import SunSpecBattery, SunSpecDevice, SunSpecMeter, SunSpecPvInverter
from gridctl.commission.checks import FAIL, PASS, SKIP, WARN, CheckResult, describe_error, within
from gridctl.commission.echonet_probe import probe_echonet, why_unreachable
from gridctl.commission.switch_probe import active_switch_test, probe_relay_board
from gridctl.devices import DeviceBinding

log = logging.getLogger(__name__)

RATING_TOLERANCE_PCT = 10.0
PLAUSIBLE_MARGIN = 1.1  # readings may exceed ratings by 10 % before they are implausible


@dataclass(frozen=True)
class ProbeOptions:
    """Probe settings.

    Attributes
    ----------
    active : bool
        Run the battery charge/discharge test.
    active_kw : float
        Magnitude of the test power [kW] (capped at a quarter of the battery's rating).
    active_hold_s : float
        How long each test step is held before it is measured [s].
    active_revert_s : float
        Revert timer sent with every test setpoint [s]: the battery falls back on its own even if
        the probe dies mid-test.
    reread_after_s : float
        Pause between the two reads used for the counter check [s].
    """

    active: bool = False
    active_kw: float = 1.0
    active_hold_s: float = 1.5
    active_revert_s: float = 15.0
    reread_after_s: float = 1.0


@dataclass
class _Probe:
    binding: DeviceBinding
    options: ProbeOptions
    results: list[CheckResult] = field(default_factory=list)
    reading: DeviceReading | None = None  # the last snapshot, for node-level checks

    def add(self, check: str, status: str, detail: str) -> None:
        self.results.append(CheckResult(self.binding.device_id, check, status, detail))


async def probe_device(binding: DeviceBinding, options: ProbeOptions) -> list[CheckResult]:
    """Run every check on one device; never raises for device problems."""
    return (await _probe_one(binding, options)).results


async def _probe_one(binding: DeviceBinding, options: ProbeOptions) -> _Probe:
    p = _Probe(binding, options)
    driver = binding.driver
    try:
        await driver.connect()
    except DeviceError as exc:
        detail = describe_error(exc)
        if isinstance(driver, EchonetDevice):
            detail = await why_unreachable(driver, detail)
            await driver.close()
        p.add("connect", FAIL, detail)
        return p
    try:
        p.add("connect", PASS, _connected_detail(driver))
        if isinstance(driver, OpcUaRouter):
            await _probe_router(p, driver)
        elif isinstance(driver, EchonetDevice):
            await probe_echonet(p, driver, lambda probe, reading: _check_values(probe, driver, reading))
        elif isinstance(driver, ModbusRelayBoard):
            await probe_relay_board(p, driver)
        else:
            await _probe_sunspec(p, driver)
    except DeviceError as exc:
        p.add("device", FAIL, describe_error(exc))
    finally:
        await driver.close()
    return p


def _connected_detail(driver) -> str:  # noqa: ANN001 - any driver
    if isinstance(driver, EchonetDevice):
        return f"ECHONET Lite {driver.endpoint.host}:{driver.endpoint.port} object {driver.eoj}"
    if isinstance(driver, ModbusRelayBoard):
        return f"Modbus relay board {driver.endpoint.label}"
    if isinstance(driver, OpcUaRouter):
        ep = driver.endpoint
        return f"{ep.endpoint_url} ({ep.security_policy}/{ep.security_mode}, identity {ep.identity})"
    chain = ", ".join(str(m.model_id) for m in driver.client.chain)
    return f"{driver.client.name}, SunSpec base {driver.client.base_address}, models {chain}"


async def _identity(p: _Probe, driver: SunSpecDevice | OpcUaRouter) -> None:
    ident = await driver.read_identity()
    expected = getattr(p.binding.config, "serial", None)
    text = f"{ident.manufacturer} {ident.model}, serial {ident.serial}"
    if expected and ident.serial != expected:
        p.add("identity", FAIL, f"serial {ident.serial!r} but the configuration expects {expected!r}")
    else:
        p.add("identity", PASS, text + ("" if expected else " (no serial configured)"))


# -- SunSpec ------------------------------------------------------------------------------
async def _probe_sunspec(p: _Probe, driver: SunSpecDevice) -> None:
    await _identity(p, driver)
    profile = p.binding.profile
    if profile is not None and profile.models_expected:
        missing = [m for m in profile.models_expected if not driver.client.has_model(m)]
        if missing:
            p.add("models", FAIL, f"missing model(s) {missing} expected by profile {profile.id}")
        else:
            p.add("models", PASS, f"all of {profile.models_expected} present")
    await _check_rating(p, driver)
    first = await driver.read_snapshot()
    await asyncio.sleep(p.options.reread_after_s)
    second = await driver.read_snapshot()
    p.reading = second
    _check_values(p, driver, second)
    _check_counters(p, first, second)
    _check_fail_safe(p, driver)
    if isinstance(driver, SunSpecBattery) and not p.options.active:
        p.add("active", SKIP, "not run (use --active)")


async def _check_rating(p: _Probe, driver: SunSpecDevice) -> None:
    rating = getattr(p.binding.config, "rating", None)
    if isinstance(driver, SunSpecPvInverter):
        reported = await driver.rated_power_kw()
        expected, what = rating.ac_kw, "AC rating"
    elif isinstance(driver, SunSpecBattery):
        reported, expected, what = await _battery_capacity_kwh(driver), rating.capacity_kwh, "capacity"
    else:
        p.add("rating", SKIP, "meters report no rating")
        return
    if reported is None:
        p.add("rating", WARN, f"device reports no {what}; configured {expected} (not checked)")
    elif within(reported, expected, RATING_TOLERANCE_PCT):
        p.add("rating", PASS, f"{what} {reported:g} (configured {expected:g})")
    else:
        p.add("rating", FAIL, f"{what} {reported:g} differs from configured {expected:g} by more than "
                              f"{RATING_TOLERANCE_PCT:g} %")


async def _battery_capacity_kwh(driver: SunSpecBattery) -> float | None:
    for model, point in ((802, "WHRtg"), (713, "WHRtg"), (120, "WHRtg")):
        if driver.client.has_model(model):
            values, _ = await driver.client.read_model(model)
            if values.get(point) is not None:
                return float(values[point]) / 1000.0
    return None


def _power_limit_kw(binding: DeviceBinding) -> float | None:
    rating = getattr(binding.config, "rating", None)
    if binding.kind == "pv_inverter":
        return rating.ac_kw
    if binding.kind == "battery":
        return max(rating.max_charge_kw, rating.max_discharge_kw)
    return getattr(rating, "max_kw", None)


def _check_values(p: _Probe, driver: SunSpecDevice, reading: DeviceReading) -> None:
    problems = list(reading.notes)
    power = reading.ac_power_kw
    limit = _power_limit_kw(p.binding)
    if power is None:
        problems.append("no AC power reading")
    elif limit is not None and abs(power) > limit * PLAUSIBLE_MARGIN:
        problems.append(f"power {power:.3f} kW beyond the rating {limit:g} kW")
    if p.binding.kind == "battery" and reading.soc_pct is None:
        problems.append("no state of charge")
    sign_problem = [n for n in problems if "negative" in n]
    if sign_problem:
        p.add("sign", FAIL, f"{sign_problem[0]}: PV must read >= 0; flip 'signs.power' in the profile")
    elif p.binding.kind == "pv_inverter":
        p.add("sign", PASS, f"PV power {power:.3f} kW >= 0")
    other = [n for n in problems if n not in sign_problem]
    if other:
        p.add("values", FAIL, "; ".join(other))
    else:
        soc = "" if reading.soc_pct is None else f", SoC {reading.soc_pct:g} %"
        p.add("values", PASS, f"power {power:.3f} kW{soc}")


def _check_counters(p: _Probe, first: DeviceReading, second: DeviceReading) -> None:
    c1, c2 = first.counters, second.counters
    if c2 is None or (c2.supplied_kwh is None and c2.absorbed_kwh is None):
        status = FAIL if p.binding.kind == "meter" else SKIP
        p.add("counters", status, "no cumulative energy counters" + (" (settlement needs them)" if status == FAIL else ""))
        return
    pairs = [("supplied", c1.supplied_kwh if c1 else None, c2.supplied_kwh),
             ("absorbed", c1.absorbed_kwh if c1 else None, c2.absorbed_kwh)]
    back = [f"{name} {a} -> {b} kWh" for name, a, b in pairs if a is not None and b is not None and b < a]
    notes = [n for n in second.notes if "backwards" in n]
    if back or notes:
        p.add("counters", FAIL, "counter went backwards: " + "; ".join(back + notes))
        return
    text = ", ".join(f"{name} {b:.3f} kWh" for name, _a, b in pairs if b is not None)
    p.add("counters", PASS, f"monotonic: {text}")


def _check_fail_safe(p: _Probe, driver: SunSpecDevice) -> None:
    has = driver.client.has_model
    if isinstance(driver, SunSpecBattery):
        ok = has(704) or has(124) or has(802)
        p.add("fail-safe", PASS if ok else FAIL,
              f"{driver.control_method()} control with revert timer" + (" + 802 heartbeat" if has(802) else "")
              if ok else "no revert timer or heartbeat (704, 124 or 802)")
    elif isinstance(driver, SunSpecPvInverter):
        ok = has(704) or has(123)
        p.add("fail-safe", PASS if ok else FAIL,
              "PV limit with revert timer (" + ("704" if has(704) else "123") + ")" if ok
              else "no revert timer for the PV limit (123 or 704)")
    else:
        p.add("fail-safe", SKIP, "meters take no setpoints")


async def _settled_kw(driver: SunSpecDevice | None, hold_s: float = 0.0) -> float | None:
    if driver is None:
        return None
    if hold_s:
        await asyncio.sleep(hold_s)
    return (await driver.read_snapshot()).ac_power_kw


def _step_problems(label: str, command: float, battery_kw: float | None, meter_delta_kw: float | None,
                   test_kw: float) -> list[str]:
    """What went wrong in one test step (battery reading and, if metered, the grid's response)."""
    problems = []
    if battery_kw is None or battery_kw * command <= 0 or abs(battery_kw) < 0.5 * test_kw:
        flipped = battery_kw is not None and battery_kw * command < 0
        problems.append(f"{label} {command:+.2f} kW commanded, battery reads {battery_kw} kW"
                        + (" (sign flipped?)" if flipped else ""))
    # discharging lowers the grid import by about the battery power, charging raises it
    if meter_delta_kw is not None and not (meter_delta_kw * command < 0 and abs(meter_delta_kw) >= 0.5 * test_kw):
        problems.append(f"{label} {command:+.2f} kW commanded, grid meter moved {meter_delta_kw:+.2f} kW "
                        "(sign flipped or battery behind another meter?)")
    return problems


async def _active_battery_test(p: _Probe, driver: SunSpecBattery, meter: SunSpecMeter | None) -> None:
    """Charge, then discharge, a little, checked by the battery and the node's grid meter; then release."""
    rating = p.binding.config.rating
    test_kw = min(p.options.active_kw, 0.25 * rating.max_charge_kw, 0.25 * rating.max_discharge_kw)
    revert, hold = p.options.active_revert_s, p.options.active_hold_s
    before, grid_before = await _settled_kw(driver), await _settled_kw(meter)
    failures: list[str] = []
    try:
        for label, command in (("charge", -test_kw), ("discharge", test_kw)):
            await driver.write_battery_power_kw(command, revert_s=revert)
            measured = await _settled_kw(driver, hold)
            grid = await _settled_kw(meter)
            delta = None if grid is None or grid_before is None else grid - grid_before
            failures += _step_problems(label, command, measured, delta, test_kw)
    finally:
        await driver.write_battery_power_kw(None, revert_s=revert)  # hand control back to the device
    after = await _settled_kw(driver, hold)
    if after is None or before is None or abs(after - before) > max(0.1, 0.1 * test_kw):
        failures.append(f"power {after} kW after the test, {before} kW before")
    witness = "battery and grid meter" if meter is not None else "battery (no grid meter on the node)"
    if failures:
        p.add("active", FAIL, "; ".join(failures))
    else:
        p.add("active", PASS, f"charge and discharge at {test_kw:g} kW confirmed by the {witness}; "
                              f"control handed back ({after:g} kW)")


async def active_test(battery: DeviceBinding, meter: DeviceBinding | None, options: ProbeOptions) -> list[CheckResult]:
    """The active battery test on its own connection(s); errors become a failed check."""
    p = _Probe(battery, options)
    meter_driver = meter.driver if meter is not None else None
    try:
        await battery.driver.connect()
        if meter_driver is not None:
            await meter_driver.connect()
        await _active_battery_test(p, battery.driver, meter_driver)
    except DeviceError as exc:
        p.add("active", FAIL, describe_error(exc))
    finally:
        await battery.driver.close()
        if meter_driver is not None:
            await meter_driver.close()
    return p.results


# -- routers ------------------------------------------------------------------------------
async def _probe_router(p: _Probe, router: OpcUaRouter) -> None:
    await _identity(p, router)
    config = p.binding.config
    configured = {leg.id: leg for leg in config.legs}
    missing = sorted(set(configured) - set(router.leg_ids))
    wrong_kind = [f"{leg} is {router.leg_kinds[leg]}, configured {configured[leg].kind}"
                  for leg in configured if leg in router.leg_kinds and router.leg_kinds[leg] != configured[leg].kind]
    if missing or wrong_kind:
        p.add("legs", FAIL, "; ".join(([f"missing legs {missing}"] if missing else []) + wrong_kind))
    else:
        p.add("legs", PASS, f"legs {sorted(configured)} present with the configured kinds")
    rated = await router.read_rated_kw()
    status = PASS if within(rated, config.rating.rated_kw, RATING_TOLERANCE_PCT) else FAIL
    p.add("rating", status, f"rated {rated:g} kW (configured {config.rating.rated_kw:g})")
    first = await router.read_snapshot()
    await asyncio.sleep(p.options.reread_after_s)
    second = await router.read_snapshot()
    _check_router_values(p, second, configured)
    _check_router_counters(p, first, second)
    timeout = await router.read_heartbeat_timeout_s()
    p.add("fail-safe", PASS if timeout > 0 else FAIL,
          f"heartbeat fail-safe after {timeout} s" if timeout > 0 else "no heartbeat timeout")


def _check_router_values(p: _Probe, reading: DeviceReading, configured: dict) -> None:
    grid = reading.grid
    problems: list[str] = []
    if grid is None or grid.connected is None:
        problems.append("no grid state")
    for leg_id, leg in reading.legs.items():
        if leg.power_kw is None:
            problems.append(f"{leg_id}: no power")
        elif leg.limit_kw is not None and abs(leg.power_kw) > leg.limit_kw * PLAUSIBLE_MARGIN:
            problems.append(f"{leg_id}: {leg.power_kw:.2f} kW beyond its {leg.limit_kw:g} kW limit")
    pv_negative = [leg_id for leg_id, leg in reading.legs.items()
                   if leg_id in configured and configured[leg_id].kind == "pv" and (leg.power_kw or 0) < -0.05]
    if pv_negative:
        p.add("sign", FAIL, f"PV leg(s) {pv_negative} read negative: sign flipped")
    else:
        grid_leg = next((leg for leg_id, leg in reading.legs.items()
                         if leg_id in configured and configured[leg_id].kind == "grid"), None)
        grid_text = "n/a" if grid_leg is None or grid_leg.power_kw is None else f"{grid_leg.power_kw:.3f} kW"
        p.add("sign", PASS, f"PV legs flow into the router; grid leg {grid_text}")
    state = f"grid {'connected' if grid and grid.connected else 'islanded'}, {grid.voltage_v:g} V, " \
            f"{grid.frequency_hz:g} Hz" if grid and grid.voltage_v is not None else "no grid state"
    p.add("values", FAIL if problems else PASS, "; ".join(problems) if problems else state)


def _check_router_counters(p: _Probe, first: DeviceReading, second: DeviceReading) -> None:
    back = []
    for leg_id, leg in second.legs.items():
        before = first.legs.get(leg_id)
        if before is None:
            continue
        for name in ("supplied_kwh", "absorbed_kwh"):
            a, b = getattr(before.counters, name), getattr(leg.counters, name)
            if a is not None and b is not None and b < a:
                back.append(f"{leg_id}.{name} {a} -> {b}")
    p.add("counters", FAIL if back else PASS, "went backwards: " + "; ".join(back) if back
          else f"monotonic on {len(second.legs)} legs")


async def _active_pv_test(p: _Probe, driver: SunSpecPvInverter) -> None:
    """Curtail to half the present output for a moment, then release and see it recover."""
    before = await _settled_kw(driver)
    if before is None or before < 0.5:
        p.add("active", SKIP, f"PV output {before} kW: too little sun to test the limit")
        return
    limit = 0.5 * before
    try:
        await driver.write_pv_limit_kw(limit, revert_s=p.options.active_revert_s)
        curtailed = await _settled_kw(driver, p.options.active_hold_s)
    finally:
        await driver.write_pv_limit_kw(None, revert_s=p.options.active_revert_s)
    after = await _settled_kw(driver, p.options.active_hold_s)
    if curtailed is None or curtailed > limit + max(0.05, 0.1 * limit):
        p.add("active", FAIL, f"limit {limit:.2f} kW commanded, output stayed at {curtailed} kW")
    elif after is None or after < 0.8 * before:
        p.add("active", FAIL, f"output {after} kW after releasing the limit, {before:.2f} kW before")
    else:
        p.add("active", PASS, f"curtailed {before:.2f} -> {curtailed:.2f} kW at a {limit:.2f} kW limit, "
                              f"back to {after:.2f} kW after release")


async def _on_own_connection(binding: DeviceBinding, options: ProbeOptions, test) -> list[CheckResult]:  # noqa: ANN001
    """Run ``test(probe, driver)`` on the device's own connection; errors become a failed check."""
    p = _Probe(binding, options)
    try:
        await binding.driver.connect()
        await test(p, binding.driver)
    except DeviceError as exc:
        p.add("active", FAIL, describe_error(exc))
    finally:
        await binding.driver.close()
    return p.results


async def active_pv_test(pv: DeviceBinding, options: ProbeOptions) -> list[CheckResult]:
    """The active PV limit test on its own connection; errors become a failed check."""
    return await _on_own_connection(pv, options, _active_pv_test)


async def active_switches(switch: DeviceBinding, options: ProbeOptions) -> list[CheckResult]:
    """The active switch test on its own connection; errors become a failed check."""
    return await _on_own_connection(switch, options, active_switch_test)


def _grid_meter(bindings: list[DeviceBinding], node_id: str) -> DeviceBinding | None:
    return next((b for b in bindings if b.node_id == node_id and b.kind == "meter"
                 and getattr(b.config, "role", "grid") == "grid"), None)


def _meter_sign(meter: _Probe, probes: list[_Probe]) -> None:
    """Grid meter sign from the node balance: implied load = grid + PV + battery must be >= 0."""
    grid_kw = meter.reading.ac_power_kw if meter.reading else None
    if grid_kw is None:
        return
    node = meter.binding.node_id
    others = [q for q in probes if q.binding.node_id == node and q.binding.kind in ("pv_inverter", "battery")]
    if any(q.reading is None or q.reading.ac_power_kw is None for q in others):
        meter.add("sign", WARN, f"grid {grid_kw:.3f} kW; node balance not checked (a PV/battery reading is missing)")
        return
    supply_kw = sum(q.reading.ac_power_kw for q in others)
    load_kw = grid_kw + supply_kw
    tolerance_kw = max(0.2, 0.05 * (abs(grid_kw) + abs(supply_kw)))
    if load_kw < -tolerance_kw:
        meter.add("sign", FAIL, f"implied load {load_kw:.3f} kW < 0 (grid {grid_kw:.3f} + PV/battery "
                                f"{supply_kw:.3f} kW): meter sign flipped? (signs.power in the profile)")
    else:
        meter.add("sign", PASS, f"grid {grid_kw:.3f} kW + PV/battery {supply_kw:.3f} kW = load {load_kw:.3f} kW >= 0")


async def probe_all(bindings: list[DeviceBinding], options: ProbeOptions) -> list[CheckResult]:
    """Probe every device concurrently, then check meters against their node's balance and
    (``--active``) test batteries and PV limits one device at a time.

    Results come in device order, each battery's active check after its other checks.
    """
    probes = list(await asyncio.gather(*(_probe_one(b, options) for b in bindings)))
    for p in probes:
        if p.binding.kind == "meter" and getattr(p.binding.config, "role", "grid") == "grid":
            _meter_sign(p, probes)
    by_device = {p.binding.device_id: p.results for p in probes}
    if options.active:
        for b in bindings:
            connected = any(r.check == "connect" and r.status == PASS for r in by_device[b.device_id])
            if b.kind == "battery" and connected:
                by_device[b.device_id] += await active_test(b, _grid_meter(bindings, b.node_id), options)
            elif b.kind == "pv_inverter" and connected:
                by_device[b.device_id] += await active_pv_test(b, options)
            elif isinstance(b.driver, SwitchesLoads) and connected:
                by_device[b.device_id] += await active_switches(b, options)
    return [result for results in by_device.values() for result in results]

"""Benchmark: poll N emulated SunSpec devices in a 1 s cycle from one asyncio process.

The emulators (a third PV inverters, a third batteries, a third meters) run in separate child
processes; this process connects one driver per device and, every cycle, reads one snapshot of
every device concurrently (``SiteDevices.poll``-style gather). Prints cycle duration p50/p99/max
and per-read figures. Target (issue 5): 300 devices, cycle p99 <= 0.5 s on 2 cores.

    .venv/bin/python bench/polling.py --devices 300 --cycles 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drivers.errors import DeviceError  # noqa: E402
from drivers.profile import DeviceQuirks, ModbusEndpoint  # noqa: E402
from drivers.sunspec.devices import SunSpecBattery, SunSpecMeter, SunSpecPvInverter  # noqa: E402

KINDS = ("pv_inverter", "battery", "meter")
MODELS = {"pv_inverter": (1, 101, 120, 123), "battery": (1, 120, 124, 802), "meter": (1, 203)}
DRIVERS = {"pv_inverter": SunSpecPvInverter, "battery": SunSpecBattery, "meter": SunSpecMeter}


# -- child: emulators ---------------------------------------------------------------------
async def serve(count: int, offset: int) -> None:
    """Start ``count`` emulators; print their ports as one JSON line; serve until stdin closes."""
    from tests.fixtures.emulators import free_port, make_physics  # noqa: PLC0415 - child only
    from sim.emulators.sunspec_map import Identity  # noqa: PLC0415
    from sim.emulators.sunspec_server import SunSpecEmulator  # noqa: PLC0415

    devices = []
    for i in range(count):
        kind = KINDS[(offset + i) % 3]
        emu = SunSpecEmulator(make_physics(kind), MODELS[kind], Identity(serial=f"B-{offset + i}"), port=free_port())
        await emu.start()
        devices.append({"kind": kind, "port": emu.port})
    print(json.dumps(devices), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


# -- parent: poller -----------------------------------------------------------------------
def start_children(total: int, procs: int) -> tuple[list[subprocess.Popen], list[dict]]:
    children, devices = [], []
    per = -(-total // procs)
    for p in range(procs):
        n = min(per, total - p * per)
        child = subprocess.Popen([sys.executable, __file__, "--serve", str(n), "--offset", str(p * per)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        children.append(child)
    for child in children:
        line = child.stdout.readline()
        if not line:
            raise SystemExit("emulator process failed to start")
        devices += json.loads(line)
    return children, devices


def cpu_s(pid: int) -> float:
    """User + system CPU time of a process [s] (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100.0 * (len(ordered) - 1))))]


async def poll(devices: list[dict], cycles: int, period_s: float, child_pids: list[int]) -> None:
    drivers = [DRIVERS[d["kind"]](ModbusEndpoint("127.0.0.1", d["port"], timeout_s=1.0), DeviceQuirks(retries=1))
               for d in devices]
    t = time.perf_counter()
    await asyncio.gather(*(drv.connect() for drv in drivers))
    print(f"connected {len(drivers)} devices in {time.perf_counter() - t:.2f} s")
    reads: list[float] = []

    async def one(drv) -> bool:  # noqa: ANN001
        start = time.perf_counter()
        try:
            await drv.read_snapshot()
        except DeviceError:
            return False
        reads.append(time.perf_counter() - start)
        return True

    await asyncio.gather(*(one(drv) for drv in drivers))  # warm-up cycle, not counted
    reads.clear()
    durations, errors, late = [], 0, 0
    cpu0 = [cpu_s(os.getpid())] + [cpu_s(pid) for pid in child_pids]
    next_start = time.perf_counter()
    for _ in range(cycles):
        start = time.perf_counter()
        ok = await asyncio.gather(*(one(drv) for drv in drivers))
        duration = time.perf_counter() - start
        durations.append(duration)
        errors += ok.count(False)
        late += duration > period_s
        next_start += period_s
        await asyncio.sleep(max(0.0, next_start - time.perf_counter()))
    cpu1 = [cpu_s(os.getpid())] + [cpu_s(pid) for pid in child_pids]
    await asyncio.gather(*(drv.close() for drv in drivers))
    poller_ms = (cpu1[0] - cpu0[0]) / cycles * 1000.0
    emulators_ms = sum(b - a for a, b in zip(cpu0[1:], cpu1[1:], strict=True)) / cycles * 1000.0
    print(f"cycles: {cycles} x {len(drivers)} devices (after one warm-up cycle), period {period_s:g} s")
    print(f"cycle duration: p50 {statistics.median(durations) * 1000:.1f} ms, p99 {pct(durations, 99) * 1000:.1f} ms, "
          f"max {max(durations) * 1000:.1f} ms; cycles over the period: {late}")
    print(f"snapshot read: p50 {pct(reads, 50) * 1000:.1f} ms, p99 {pct(reads, 99) * 1000:.1f} ms; errors: {errors}")
    print(f"CPU per cycle: poller {poller_ms:.0f} ms, emulators {emulators_ms:.0f} ms "
          f"(machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=300)
    parser.add_argument("--cycles", type=int, default=60)
    parser.add_argument("--period", type=float, default=1.0, help="cycle period [s]")
    parser.add_argument("--emulator-procs", type=int, default=2, help="child processes serving the emulators")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    if args.serve is not None:
        asyncio.run(serve(args.serve, args.offset))
        return
    children, devices = start_children(args.devices, args.emulator_procs)
    try:
        asyncio.run(poll(devices, args.cycles, args.period, [c.pid for c in children]))
    finally:
        for child in children:
            child.stdin.close()
            child.wait(timeout=30)


if __name__ == "__main__":
    main()

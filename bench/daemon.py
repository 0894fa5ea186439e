"""Benchmark the edge daemon: cycle time p50/p99 and memory.

1. Misono (27 devices: SunSpec Modbus and secure OPC UA routers) served by ``gridctl emulate``
   in a child process; the real daemon in this process polls, decides, writes and records.
2. A synthetic 300-device site (100 homes x PV, battery, meter on SunSpec Modbus), same way.
3. The daemon's memory over an accelerated run (scripted plant, manual clock: days of
   cycles, plans, settlements and telemetry in minutes): the process RSS and CPU time after
   the imports, after the build and after each simulated day, to show memory stays flat;
   with ``--trace`` also its own heap by tracemalloc (allocations with daemon code in their
   stack, the test plant excluded, the plant's write log bounded) and the top growth by
   traceback (tracemalloc triples the run time and adds its own tables to the RSS).
   ``--site synthetic`` runs it on the 300-device site; ``--poll-s`` and ``--replan-s``
   trade events per simulated day for run time.

    .venv/bin/python bench/daemon.py                 # all three, defaults
    .venv/bin/python bench/daemon.py --seconds 60 --days 2
    .venv/bin/python bench/daemon.py --only memory --site synthetic --days 30 --poll-s 300 --replan-s 3600
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import logging
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import deque
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ruamel.yaml import YAML  # noqa: E402

from gridctl.cli.emulate_launcher import start_emulators, stop_emulators  # noqa: E402
from gridctl.config import load_site  # noqa: E402
from gridctl.daemon import build_daemon  # noqa: E402


def rss_mb() -> float:
    """Resident set size of this process [MB]."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def cpu_s() -> float:
    """CPU time of this process so far, user + system [s] (the solver's worker thread included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


#: RSS right after the imports above [MB].
RSS_IMPORTS_MB = rss_mb()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def synthetic_site(folder: Path, homes: int) -> Path:
    """A site of ``homes`` homes, each PV + battery + grid meter on Modbus, no routers."""
    yaml = YAML(typ="rt")
    tree = yaml.load((REPO / "configs" / "misono.yaml").read_text(encoding="utf-8"))
    tree["device_profiles_dir"] = str(REPO / "configs" / "devices")
    template = tree["nodes"][0]
    nodes, links, port = [], [], 21000
    for i in range(homes):
        node = copy.deepcopy(template)
        node["id"], node["name"] = f"h{i:03d}", f"Home {i}"
        devices = []
        for device in template["devices"]:
            if device["kind"] == "router":
                continue
            d = copy.deepcopy(device)
            d["id"] = f"h{i:03d}-{device['kind']}"
            d["protocol"]["modbus"]["port"] = port
            port += 1
            devices.append(d)
        node["devices"] = devices
        nodes.append(node)
    tree["nodes"], tree["links"] = nodes, links
    tree["control"]["socket_path"] = str(folder / "gridctl.sock")
    tree["storage"]["ledger_path"] = str(folder / "ledger.sqlite")
    path = folder / "synthetic.yaml"
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(tree, handle)
    return path


async def measure(site, seconds: float, folder: Path) -> dict:
    daemon, ledger = build_daemon(site, ledger_path=folder / "bench-ledger.sqlite",
                                  socket_path=folder / "bench.sock", shipper=None,
                                  runtime_dir=folder)
    reports = []
    task = asyncio.create_task(daemon.run(on_cycle=reports.append))
    start = time.monotonic()
    while time.monotonic() - start < 120 and not (
            reports and all(v is None for v in reports[-1].device_faults.values())):
        await asyncio.sleep(0.2)
    connected_at = len(reports)
    await asyncio.sleep(seconds)
    daemon.stop()
    await task
    ledger.close()
    durations = [r.duration_s * 1000 for r in reports[connected_at:]]
    faults = sum(1 for r in reports[connected_at:] for v in r.device_faults.values() if v)
    return {"cycles": len(durations), "p50_ms": statistics.median(durations),
            "p99_ms": pct(durations, 99), "max_ms": max(durations), "device_faults": faults,
            "solves": daemon.planner.stats.finished, "rss_mb": rss_mb()}


def bench_emulated(config: Path, seconds: float, label: str) -> None:
    folder = config.parent
    site = load_site(config)
    import os

    os.chdir(folder)
    child = start_emulators(config, site, timeout_s=300)
    try:
        result = asyncio.run(measure(site, seconds, folder))
    finally:
        stop_emulators(child)
    devices = len(site.all_devices())
    print(f"{label}: {devices} devices, poll {site.control.poll_period_s:g} s, {result['cycles']} "
          f"cycles: cycle p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, max "
          f"{result['max_ms']:.1f} ms; device faults {result['device_faults']}; solves "
          f"{result['solves']}; RSS {result['rss_mb']:.0f} MB", flush=True)


#: The scripted plant keeps only its last writes: an unbounded log would be the plant's growth.
PLANT_WRITE_LOG = 1000
#: Frames kept per traced allocation (more multiply the run time) [frames].
TRACE_FRAMES = 1
#: Where the daemon's code lives (allocations with one of these in their stack are the daemon's).
DAEMON_CODE = ("gridctl", "optimizer", "drivers")


def daemon_heap(snapshot: tracemalloc.Snapshot) -> tracemalloc.Snapshot:
    """The part of ``snapshot`` the daemon holds: made from its code, not from the test plant."""
    keep = [tracemalloc.Filter(True, str(REPO / pkg / "*"), all_frames=True) for pkg in DAEMON_CODE]
    return snapshot.filter_traces(keep).filter_traces(
        [tracemalloc.Filter(False, str(REPO / "tests" / "*"), all_frames=True)])


def heap_mb(snapshot: tracemalloc.Snapshot) -> float:
    return sum(stat.size for stat in snapshot.statistics("filename")) / 2**20


def memory_site(kind: str, folder: Path, poll_s: float, replan_s: int):
    """Misono or the synthetic 300-device site, with the accelerated run's control periods."""
    from tests.daemon.conftest import fast_site

    control = {"poll_period_s": poll_s, "setpoint_expiry_s": 3 * poll_s,
               "replan_period_s": replan_s, "horizon_h": 24.0}
    if kind == "misono":
        return fast_site(**control)
    site = load_site(synthetic_site(folder, 100))
    return site.model_copy(update={"control": site.control.model_copy(update=control)})


def bench_memory(days: float, kind: str = "misono", poll_s: float = 60.0, replan_s: int = 900,
                 trace: bool = False) -> None:
    """Memory of the daemon over an accelerated run: RSS per simulated day, optionally its heap."""
    from gridctl.daemon import ManualClock
    from tests.daemon.conftest import START, Plant, scripted_factory

    clock = ManualClock(START)
    plant = Plant(clock=clock, writes=deque(maxlen=PLANT_WRITE_LOG))
    per_day = int(round(86400 / poll_s))
    cycles = int(days * per_day)
    if trace:
        tracemalloc.start(TRACE_FRAMES)
    with tempfile.TemporaryDirectory() as tmp:
        site = memory_site(kind, Path(tmp), poll_s, replan_s)
        print(f"memory run ({kind}, {len(site.all_devices())} devices, poll {poll_s:g} s, re-plan "
              f"{replan_s} s, horizon {site.control.horizon_h:g} h): RSS after imports "
              f"{RSS_IMPORTS_MB:.0f} MB", flush=True)
        daemon, ledger = build_daemon(site, clock=clock, factory=scripted_factory(plant),
                                      ledger_path=Path(tmp) / "ledger.sqlite", socket_path=None,
                                      shipper=None, runtime_dir=Path(tmp))
        print(f"  after build: RSS {rss_mb():.0f} MB", flush=True)
        marks: list[tuple[int, float, tracemalloc.Snapshot]] = []
        days_rss: list[float] = []
        started, cpu0 = time.monotonic(), cpu_s()

        def on_cycle(report) -> None:
            n = daemon.cycle.count
            if trace and n in (100, cycles // 2, cycles - 1):
                marks.append((n, rss_mb(), daemon_heap(tracemalloc.take_snapshot())))
            if n in (1, 10) or n % per_day == 0:
                label = f"day {n // per_day}" if n % per_day == 0 else f"cycle {n}"
                if n % per_day == 0:
                    days_rss.append(rss_mb())
                print(f"  {label}: RSS {rss_mb():.0f} MB, {daemon.planner.stats.finished} plans, "
                      f"{time.monotonic() - started:.0f} s wall, {cpu_s() - cpu0:.0f} s CPU",
                      flush=True)

        asyncio.run(daemon.run(duration_s=days * 86400, on_cycle=on_cycle))
        periods = len(ledger.settlements())
        ledger.close()
    if trace:
        tracemalloc.stop()
    print(f"accelerated run: {days:g} days in {time.monotonic() - started:.0f} s wall, "
          f"{cpu_s() - cpu0:.0f} s CPU (tracemalloc {'on' if trace else 'off'}), "
          f"{daemon.cycle.count} cycles, {daemon.planner.stats.finished} plans, {periods} periods "
          f"settled; plant write log bounded to {PLANT_WRITE_LOG}", flush=True)
    if len(days_rss) >= 3:
        half = len(days_rss) // 2
        growth = (days_rss[-1] - days_rss[half]) / (len(days_rss) - 1 - half)
        print(f"RSS growth from day {half + 1} to day {len(days_rss)}: {growth:+.2f} MB per "
              f"simulated day", flush=True)
    if not marks:
        return
    print("daemon heap (allocations from gridctl/optimizer/drivers, plant excluded): "
          + ", ".join(f"{heap_mb(snap):.2f} MB after {n} cycles" for n, _rss, snap in marks)
          + "; process RSS (with tracemalloc's own tables) "
          + ", ".join(f"{rss:.0f} MB" for _n, rss, _snap in marks), flush=True)
    if len(marks) == 3:
        (n1, _r1, mid), (n2, _r2, last) = marks[1], marks[2]
        print(f"daemon heap growth over the second half ({n2 - n1} cycles): "
              f"{heap_mb(last) - heap_mb(mid):+.3f} MB; largest changes:", flush=True)
        for stat in last.compare_to(mid, "traceback")[:5]:
            frame = stat.traceback[0]
            print(f"  {stat.size_diff / 1024:+.1f} KiB {stat.count_diff:+d} blocks "
                  f"{Path(frame.filename).name}:{frame.lineno}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0, help="measured run per site [s]")
    parser.add_argument("--days", type=float, default=2.0, help="accelerated run length [days]")
    parser.add_argument("--only", choices=("misono", "synthetic", "memory"))
    parser.add_argument("--site", choices=("misono", "synthetic"), default="misono",
                        help="site of the accelerated memory run")
    parser.add_argument("--poll-s", type=float, default=60.0, help="memory run: poll period [s]")
    parser.add_argument("--replan-s", type=int, default=900, help="memory run: re-plan period [s]")
    parser.add_argument("--trace", action="store_true", help="memory run: tracemalloc heap and growth")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.only in (None, "memory"):
            bench_memory(args.days, args.site, args.poll_s, args.replan_s, args.trace)
        if args.only in (None, "misono"):
            misono = folder / "misono"
            misono.mkdir()
            text = (REPO / "configs" / "misono.yaml").read_text(encoding="utf-8")
            (misono / "misono.yaml").write_text(text.replace(
                "device_profiles_dir: devices", f"device_profiles_dir: {REPO / 'configs' / 'devices'}"))
            bench_emulated(misono / "misono.yaml", args.seconds, "misono")
        if args.only in (None, "synthetic"):
            synthetic = folder / "synthetic"
            synthetic.mkdir()
            bench_emulated(synthetic_site(synthetic, 100), args.seconds, "synthetic")


if __name__ == "__main__":
    main()

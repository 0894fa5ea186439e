"""Run a sweep's cases through an executor, storing each finished case at once.

Each finished case is written to ``OUT/cases/<hash>.json`` atomically (a private temporary file,
flushed and renamed into place), so an interrupted sweep loses at most the cases under way and
the next run skips every stored case. A case that fails is reported and the others go on.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, wait
from dataclasses import dataclass
from pathlib import Path

from sim.sweep.case import CaseResult, CaseTask, run_case
from sim.sweep.load import Sweep

__all__ = ["CaseFailure", "SweepOutcome", "read_case", "run_sweep", "write_case"]


@dataclass(frozen=True)
class CaseFailure:
    """A case that raised: its index in the sweep, hash and the first line of the error."""

    index: int
    case_hash: str
    message: str


@dataclass(frozen=True)
class SweepOutcome:
    """What a run did: results in sweep order (stored and new), counts and wall time [s]."""

    results: tuple[CaseResult, ...]
    ran: int
    skipped: int
    failures: tuple[CaseFailure, ...]
    wall_s: float


def case_path(out_dir: Path, case_hash: str) -> Path:
    return out_dir / "cases" / f"{case_hash}.json"


def read_case(out_dir: Path, task: CaseTask) -> CaseResult | None:
    """The stored result of ``task``, or None if absent, unreadable or of another case."""
    try:
        doc = json.loads(case_path(out_dir, task.case_hash).read_text(encoding="utf-8"))
        result = CaseResult.from_json(doc)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return result if result.case_hash == task.case_hash else None


def write_case(out_dir: Path, result: CaseResult, code_version: str) -> Path:
    """Store ``result`` atomically under its hash."""
    target = case_path(out_dir, result.case_hash)
    target.parent.mkdir(parents=True, exist_ok=True)
    doc = {**result.to_json(), "code_version": code_version}
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{result.case_hash[:12]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(doc, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def run_sweep(sweep: Sweep, out_dir: Path, executor: Executor, in_flight: int = 1,
              progress: Callable[[int, int], None] | None = None) -> SweepOutcome:
    """Run every case of ``sweep`` not yet stored under ``out_dir``.

    At most ``in_flight`` cases are submitted at a time (1 for the serial executor, whose
    ``submit`` runs the case), so each case is stored as soon as it finishes.
    ``progress(done, total)`` is called in this process as cases finish (stored ones count as
    done from the start).
    """
    t0 = time.perf_counter()
    done = {t.case_hash: r for t in sweep.tasks if (r := read_case(out_dir, t)) is not None}
    pending = [t for t in sweep.tasks if t.case_hash not in done]
    skipped, failures = len(done), []
    if progress is not None:
        progress(len(done), len(sweep.tasks))
    queue, running = iter(pending), {}

    def fill() -> None:
        while len(running) < max(1, in_flight) and (task := next(queue, None)) is not None:
            running[executor.submit(run_case, task)] = task

    fill()
    while running:
        finished, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in finished:
            task = running.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - one failing case never stops the sweep
                lines = str(exc).strip().splitlines() or [type(exc).__name__]
                failures.append(CaseFailure(task.index, task.case_hash, lines[0]))
                continue
            write_case(out_dir, result, sweep.code_version)
            done[task.case_hash] = result
            if progress is not None:
                progress(len(done), len(sweep.tasks))
        fill()
    results = tuple(done[t.case_hash] for t in sweep.tasks if t.case_hash in done)
    return SweepOutcome(results=results, ran=len(done) - skipped, skipped=skipped,
                        failures=tuple(sorted(failures, key=lambda f: f.index)),
                        wall_s=time.perf_counter() - t0)

"""Evaluating the objective between solves stays on the calling thread.

A BLAS dot product over a model's columns (10,000 and more) wakes OpenBLAS's worker threads,
which then spin beside HiGHS; the dive evaluates the objective after every solve.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from optimizer import Dispatcher
from tests.optimizer.kit import make_problem


def _other_threads_cpu_ticks() -> int:
    """CPU clock ticks (user + system) of this process's threads other than the caller."""
    me, total = threading.get_native_id(), 0
    for tid in os.listdir("/proc/self/task"):
        if int(tid) == me:
            continue
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


REPO = Path(__file__).resolve().parents[2]


def measure() -> dict:
    """Solve a large model, then evaluate its objective 2,000 times; what other threads spent."""
    n = 24
    problem = make_problem(n_nodes=n, n_steps=96, pv=2.0, load=1.0, soc_max=5.0, charge_max=2.0,
                           discharge_max=2.0, links=[(i, i + 1) for i in range(n - 1)],
                           link_capacity=3.0, link_efficiency=0.9)
    dispatcher = Dispatcher()
    dispatcher.solve(problem)
    model = dispatcher._model
    x = np.linspace(0.0, 1.0, model.layout.cols.count)
    assert x.size > 20_000  # above OpenBLAS's threading threshold for a dot product
    expected = math.fsum(x * model._pushed["cost"]) + model._offset
    time.sleep(0.5)  # let any worker woken while building and solving go back to sleep
    before = _other_threads_cpu_ticks()
    values = [model.objective_jpy(x) for _ in range(2000)]
    return {"other_ticks": _other_threads_cpu_ticks() - before, "first": values[0], "last": values[-1],
            "expected": expected}


def test_objective_of_a_large_model_uses_no_other_thread():
    # in a fresh process: threads other tests left in this one must not count
    code = "import json; from tests.optimizer.test_objective_threads import measure; print(json.dumps(measure()))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=240,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["other_ticks"] == 0
    assert got["first"] == got["last"]
    assert math.isclose(got["first"], got["expected"], rel_tol=1e-12, abs_tol=1e-9)

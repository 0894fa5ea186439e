"""The solver writes nothing to stdout (the daemon's stdout is the journal): no HiGHS banner,
no log, from a real child process solving LPs and MILPs of several shapes."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import numpy as np
from optimizer import Dispatcher
from tests.optimizer.kit import make_problem
rng = np.random.default_rng(1)
for n, t, binary in ((2, 4, False), (2, 4, True), (3, 6, False)):
    problem = make_problem(n_nodes=n, n_steps=t, n_tiers=2, step_s=1800.0, pv=rng.uniform(0, 5, (n, t)),
                           load=rng.uniform(0, 2, (n, 2, t)), import_price=rng.uniform(20, 40, (n, t)),
                           export_price=rng.uniform(10, 45, (n, t)), import_limit=8.0, export_limit=8.0,
                           stored=2.0, soc_max=8.0, charge_max=3.0, discharge_max=3.0,
                           links=[(i, i + 1) for i in range(n - 1)], link_capacity=4.0,
                           link_efficiency=0.95)
    plan = Dispatcher(all_binary=binary).solve(problem)
    assert plan.n_steps == t
"""


def test_solving_prints_nothing_on_stdout():
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == "", result.stdout[:500]
    assert "HiGHS" not in result.stderr

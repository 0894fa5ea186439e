"""Simulation runner: a simulated clock driving gridctl's controller core against the plant."""

from sim.runner.loop import Policy, Scenario, run_policy, site_for_simulation
from sim.runner.record import LINK_SERIES, NODE_SERIES, SimResult
from sim.runner.switches import SwitchFault

__all__ = ["LINK_SERIES", "NODE_SERIES", "Policy", "Scenario", "SimResult", "SwitchFault", "run_policy",
           "site_for_simulation"]

"""The stages of one daemon cycle, in the order :class:`~.cycle.Cycle` runs them.

- :mod:`~gridctl.daemon.stages.fleet`: read every device and write setpoints, each device
  behind its own timeout, fault and reconnect back-off; setpoints clamped to the ratings.
- :mod:`~gridctl.daemon.stages.snapshot`: one poll's readings into the controller's
  ``Snapshot`` and the cumulative counter samples settlement needs (pure).
- :mod:`~gridctl.daemon.stages.forecasting`: the measurement history the forecast is made from.
- :mod:`~gridctl.daemon.stages.replan`: the planner: forecast, problem and MILP in a worker
  thread with a deadline (the ``Planner`` that :func:`gridctl.controller.run_cycle` uses).
- :mod:`~gridctl.daemon.stages.record`: counters at the 30-minute boundaries, closed periods
  handed to settlement exactly once.
- :mod:`~gridctl.daemon.stages.telemetry`: telemetry rows into the outbox, thinned when it backs up.
- :mod:`~gridctl.daemon.stages.cycle`: read, control (:func:`gridctl.controller.run_cycle`),
  write, record, each stage inside its own fault guard.

Stages know nothing of the service around them (no signals, sockets, systemd or persistence):
they import only each other, :mod:`gridctl.daemon.clock` and the layers below the daemon.
"""

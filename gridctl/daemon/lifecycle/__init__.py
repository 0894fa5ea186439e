"""The daemon as a service: composition, start-up, loop, shutdown and its ways in and out.

- :mod:`~gridctl.daemon.lifecycle.build`: compose a ``Daemon`` from a validated site (drivers,
  solver, ledger adapters, shipper); tests swap any part.
- :mod:`~gridctl.daemon.lifecycle.service`: start-up (restore state, open the socket), the
  cycle loop on the monotonic clock, operator commands, two-stage shutdown.
- :mod:`~gridctl.daemon.lifecycle.shipping`: the ledger's outbox shipped to InfluxDB by the
  sink's own loop (:meth:`gridctl.sinks.OutboxShipper.run`) on one worker thread.
- :mod:`~gridctl.daemon.lifecycle.notify`: systemd READY, STATUS, WATCHDOG and STOPPING.
- :mod:`~gridctl.daemon.lifecycle.operator`: the operator socket (server and client side).
- :mod:`~gridctl.daemon.lifecycle.persist`: controller state as JSON in the ledger's state table.
- :mod:`~gridctl.daemon.lifecycle.status`: the ``status`` document the socket answers.

Lifecycle modules may import :mod:`gridctl.daemon.stages`; stages never import them.
"""

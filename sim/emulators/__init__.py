"""Device emulators that speak real protocols on loopback, backed by ``sim.plant.devices``.

- ``sunspec_server``: SunSpec inverter, battery and meter on pymodbus's server (with faults).
- ``router_server``: a digital grid router on a secure asyncua OPC UA server.
- ``site``: every device of a site configuration (``gridctl emulate``).
- ``certs``: certificates for the routers, the gridctl client and Modbus/TCP Security tests.
"""

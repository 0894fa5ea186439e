"""Device I/O: small capability interfaces and the drivers that implement them.

- ``drivers.capabilities``: ``typing.Protocol`` per capability (read AC power [kW], energy
  counters [kWh], SoC [%], grid state; write battery power [kW], PV limit [kW], heartbeat,
  router leg power [kW]) and the values they exchange (``DeviceReading``...). Supply-positive.
- ``drivers.errors``: ``TransientDeviceError`` (retry, reconnect) and ``PermanentDeviceError``
  (the device faults), each with a machine-readable ``reason``.
- ``drivers.profile``: endpoints (Modbus, OPC UA) and vendor quirks as frozen dataclasses.
- ``drivers.sunspec``: SunSpec Modbus TCP (pymodbus) - ``SunSpecPvInverter``, ``SunSpecBattery``,
  ``SunSpecMeter``.
- ``drivers.echonet``: ECHONET Lite over UDP (own asyncio client, class knowledge as data) -
  ``EchonetPvInverter``, ``EchonetBattery``, ``EchonetSmartMeter``, ``EchonetSwitch``.
- ``drivers.opcua``: ``OpcUaRouter`` for gridctl's router information model (asyncua).

A leaf package: it imports neither ``gridctl`` nor ``optimizer`` nor ``sim``.
"""

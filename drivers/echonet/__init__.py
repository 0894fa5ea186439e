"""ECHONET Lite: frame codec, class knowledge (data), asyncio client and device drivers.

- ``frame``: ``Eoj``, ``Property``, ``Frame``, ``Esv``, ``encode``/``decode`` (``FrameError``).
- ``knowledge``: ``classes.yaml`` loaded into typed specs; ``decode_value``/``encode_value``.
- ``quirks``: ``EchonetQuirks``, per-maker deviations as data.
- ``client``: ``EchonetClient`` (UDP, TID correlation, retries, unicast or multicast discovery).
- ``devices``: ``EchonetPvInverter``, ``EchonetBattery``, ``EchonetSmartMeter``, ``EchonetSwitch``.
"""

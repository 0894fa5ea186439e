"""InfluxDB sink: the measurement schema, v1/v2 transports and the outbox shipper."""

from gridctl.sinks.schema import health_point, settlement_points, telemetry_point
from gridctl.sinks.shipper import HealthResult, OutboxShipper, ShipperStatus, health_check
from gridctl.sinks.transports import SinkError, Transport, V1Transport, V2Transport, transport_from_config

__all__ = [
    "HealthResult", "OutboxShipper", "ShipperStatus", "SinkError", "Transport", "V1Transport",
    "V2Transport", "health_check", "health_point", "settlement_points", "telemetry_point",
    "transport_from_config",
]

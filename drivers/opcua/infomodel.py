"""gridctl's router information model over OPC UA: namespace, node ids and data types.

Documented for integrators in ``docs/router-information-model.md``. Every node has a string
NodeId in the namespace :data:`NAMESPACE_URI`, so a client addresses values directly without
browsing; the list of legs is published in ``Router.Legs.LegIds``.
"""

from __future__ import annotations

NAMESPACE_URI = "urn:gridctl:router-model:v1"
MODEL_VERSION = "1"

ROUTER = "Router"
IDENTITY_MANUFACTURER = "Router.Identity.Manufacturer"  # String
IDENTITY_MODEL = "Router.Identity.Model"  # String
IDENTITY_SERIAL = "Router.Identity.SerialNumber"  # String
IDENTITY_MODEL_VERSION = "Router.Identity.ModelVersion"  # String
RATED_POWER = "Router.Identity.RatedPower_kW"  # Float [kW]

STATE_GRID_CONNECTED = "Router.State.GridConnected"  # Boolean
STATE_GRID_VOLTAGE = "Router.State.GridVoltage_V"  # Float [V]
STATE_GRID_FREQUENCY = "Router.State.GridFrequency_Hz"  # Float [Hz]

HEARTBEAT_CONTROLLER = "Router.Heartbeat.Controller"  # UInt32, written by the controller
HEARTBEAT_TIMEOUT = "Router.Heartbeat.Timeout_s"  # UInt32 [s]
HEARTBEAT_FAILSAFE = "Router.Heartbeat.FailSafeActive"  # Boolean

LEGS = "Router.Legs"
LEG_IDS = "Router.Legs.LegIds"  # String[]

#: Variables of each leg, suffixes of ``Router.Legs.<leg_id>.``; value: (OPC UA type, writable).
LEG_VARIABLES: dict[str, tuple[str, bool]] = {
    "Kind": ("String", False),  # grid | node | pv | battery | link
    "Power_kW": ("Float", False),  # positive into the router
    "Limit_kW": ("Float", False),  # magnitude
    "Setpoint_kW": ("Float", True),  # positive into the router
    "SetpointEnabled": ("Boolean", True),
    "ImportEnergy_kWh": ("Double", False),  # cumulative, flow into the router
    "ExportEnergy_kWh": ("Double", False),  # cumulative, flow out of the router
}


def leg_node(leg_id: str, variable: str) -> str:
    """String NodeId identifier of a leg variable, e.g. ``Router.Legs.grid.Power_kW``."""
    if variable not in LEG_VARIABLES:
        raise KeyError(f"unknown leg variable {variable}")
    return f"{LEGS}.{leg_id}.{variable}"

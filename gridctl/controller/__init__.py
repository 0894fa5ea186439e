"""Controller core: pure functions from readings, forecast and state to a plan and setpoints.

No clock, file, socket or logging here: ``now`` is passed in and diagnostics are returned.
"""

from gridctl.controller.types import (
    ControllerState,
    Decision,
    DeviceHealth,
    Forecast,
    GridSignal,
    Mode,
    NodeReading,
    OutageWindow,
    ReserveRequest,
    Setpoint,
    SetpointKind,
    Setpoints,
    Snapshot,
    Transition,
)

__all__ = [
    "ControllerState", "Decision", "DeviceHealth", "Forecast", "GridSignal", "Mode",
    "NodeReading", "OutageWindow", "ReserveRequest", "Setpoint", "SetpointKind", "Setpoints",
    "Snapshot", "Transition",
]

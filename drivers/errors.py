"""Driver error types: transient (retry, reconnect) or permanent (the device faults).

Every driver failure reaches callers as one of two exception classes, so the daemon needs
exactly two policies: retry a :class:`TransientDeviceError` with backoff, fault the device on a
:class:`PermanentDeviceError`. ``reason`` is a short machine-readable key that the
commissioning CLI turns into one clear line.
"""

from __future__ import annotations

# Reason keys shared by drivers and the commissioning CLI.
CONNECTION_REFUSED = "connection_refused"
TIMEOUT = "timeout"
CONNECTION_LOST = "connection_lost"
EXCEPTION_RESPONSE = "exception_response"
BUSY = "busy"
WRONG_UNIT_ID = "wrong_unit_id"
NO_SUNSPEC_MARKER = "no_sunspec_marker"
MODEL_MISSING = "model_missing"
TYPE_MISMATCH = "type_mismatch"
BAD_ADDRESS = "bad_address"
CERTIFICATE_REJECTED = "certificate_rejected"
SECURITY_NOT_OFFERED = "security_not_offered"
NOT_IMPLEMENTED = "not_implemented"
BAD_CONFIGURATION = "bad_configuration"


class DeviceError(Exception):
    """Base of all driver errors.

    Parameters
    ----------
    device : str
        Name of the device (host:port/unit or endpoint URL) the error is about.
    reason : str
        Machine-readable reason key (one of the module constants).
    detail : str
        Human-readable one-line explanation.
    """

    def __init__(self, device: str, reason: str, detail: str) -> None:
        super().__init__(f"{device}: {detail}")
        self.device = device
        self.reason = reason
        self.detail = detail


class TransientDeviceError(DeviceError):
    """A failure that may heal by itself: timeout, lost connection, busy device."""


class PermanentDeviceError(DeviceError):
    """A failure that retrying will not fix: wrong address, missing model, type mismatch."""

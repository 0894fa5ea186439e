"""Commissioning results and the messages installers read.

A probe produces :class:`CheckResult` rows; ``pass``, ``fail``, ``warn`` or ``skip``. Driver
errors become one plain line each (connection refused, timeout, wrong unit id, no SunSpec
marker, certificate rejected, missing model).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from drivers import errors
from drivers.errors import DeviceError

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"

_HINTS = {
    errors.CONNECTION_REFUSED: "connection refused: is the device on and the host/port right?",
    errors.TIMEOUT: "timed out: device unreachable, slow, or the unit id is wrong",
    errors.CONNECTION_LOST: "connection lost",
    errors.WRONG_UNIT_ID: "wrong unit id: no device answers at this unit id",
    errors.NO_SUNSPEC_MARKER: "no SunSpec marker 'SunS' at 40000, 0 or 50000: not a SunSpec device or wrong base",
    errors.MODEL_MISSING: "missing model",
    errors.CERTIFICATE_REJECTED: "certificate rejected",
    errors.SECURITY_NOT_OFFERED: "the server does not offer the configured security",
    errors.BUSY: "device busy",
    errors.EXCEPTION_RESPONSE: "Modbus exception",
    errors.BAD_ADDRESS: "illegal register address",
    errors.TYPE_MISMATCH: "type mismatch",
    errors.BAD_CONFIGURATION: "configuration problem",
}


@dataclass(frozen=True)
class CheckResult:
    """One check of one device.

    Attributes
    ----------
    device_id : str
    check : str
        Short name (``connect``, ``identity``, ``models``, ``rating``, ``values``, ``sign``,
        ``counters``, ``fail-safe``, ``active``).
    status : str
        ``pass``, ``fail``, ``warn`` or ``skip``.
    detail : str
        One line for the installer.
    """

    device_id: str
    check: str
    status: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def describe_error(exc: DeviceError) -> str:
    """One line for a driver error: the plain-language reason, then the driver's detail."""
    hint = _HINTS.get(exc.reason)
    if hint is None or hint in exc.detail:
        return exc.detail
    if exc.reason in (errors.MODEL_MISSING, errors.CERTIFICATE_REJECTED, errors.SECURITY_NOT_OFFERED,
                      errors.BAD_CONFIGURATION):
        return f"{hint}: {exc.detail}"
    return hint if exc.reason in (errors.CONNECTION_REFUSED, errors.WRONG_UNIT_ID, errors.NO_SUNSPEC_MARKER) \
        else f"{hint} ({exc.detail})"


def overall(results: list[CheckResult]) -> str:
    """``fail`` when any check failed, else ``pass``."""
    return FAIL if any(r.status == FAIL for r in results) else PASS


def within(value: float, expected: float, tolerance_pct: float) -> bool:
    """True when ``value`` is within ``tolerance_pct`` [%] of ``expected``."""
    return abs(value - expected) <= abs(expected) * tolerance_pct / 100.0

"""Outage windows and durations as operators type them: ``2026-08-10T14:00/72h``, ``24h``, ``15min``.

Pure parsing: a bad spec raises :class:`SpecError` with a one-line message naming the spec,
which the CLI turns into exit code 2.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

__all__ = ["OutageWindow", "SpecError", "parse_duration", "parse_outage", "parse_start",
           "outage_masks"]

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|min|m|s)")
_UNIT_S = {"d": 86400.0, "h": 3600.0, "min": 60.0, "m": 60.0, "s": 1.0}


class SpecError(ValueError):
    """An operator-typed value (duration, date, outage) that cannot be understood."""


def parse_duration(text: str, what: str = "duration") -> dt.timedelta:
    """Parse ``72h``, ``15min``, ``1d12h``, ``90s`` (also ``15m``) into a positive timedelta.

    Raises
    ------
    SpecError
        If the text is not a sequence of ``<number><unit>`` parts or is not positive.
    """
    cleaned = text.strip().lower()
    pos, total_s = 0, 0.0
    for match in _PART.finditer(cleaned):
        if match.start() != pos or not match.group(0):
            break
        total_s += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    if not cleaned or pos != len(cleaned):
        raise SpecError(f"{what} '{text}': expected a duration like 15min, 1h, 72h or 1d12h")
    if total_s <= 0:
        raise SpecError(f"{what} '{text}': must be longer than zero")
    return dt.timedelta(seconds=total_s)


def parse_start(text: str, timezone: str, what: str = "start") -> dt.datetime:
    """Parse an ISO date or date-time; without an offset it is site-local time. Returns UTC."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise SpecError(f"{what} '{text}': expected an ISO date like 2026-08-01 or "
                        "2026-08-10T14:00") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(timezone))
    return value.astimezone(dt.timezone.utc)


@dataclass(frozen=True)
class OutageWindow:
    """A utility outage ``[start_utc, end_utc)`` and when the controller learns of it.

    Parameters
    ----------
    start_utc, end_utc : datetime
        Half-open outage interval, tz-aware UTC.
    warning : timedelta
        Lead time before ``start_utc`` from which the controller is told of the window as a
        planned outage; zero means unannounced.
    spec : str
        The text it was parsed from (for reports).
    """

    start_utc: dt.datetime
    end_utc: dt.datetime
    warning: dt.timedelta = dt.timedelta(0)
    spec: str = ""

    @property
    def warned_from_utc(self) -> dt.datetime:
        """First moment the controller knows of the outage (UTC)."""
        return self.start_utc - self.warning

    @property
    def duration_h(self) -> float:
        """Length of the outage [h]."""
        return (self.end_utc - self.start_utc).total_seconds() / 3600.0


def parse_outage(spec: str, timezone: str, warning: dt.timedelta = dt.timedelta(0)) -> OutageWindow:
    """Parse ``START/DURATION`` (``2026-08-10T14:00/72h``); START without offset is site-local."""
    if spec.count("/") != 1:
        raise SpecError(f"outage '{spec}': expected START/DURATION like 2026-08-10T14:00/72h")
    start_text, duration_text = spec.split("/")
    start = parse_start(start_text, timezone, what=f"outage '{spec}' start")
    duration = parse_duration(duration_text, what=f"outage '{spec}' duration")
    return OutageWindow(start_utc=start, end_utc=start + duration, warning=warning, spec=spec)


def outage_masks(
    outages: tuple[OutageWindow, ...], step_starts_utc: list[dt.datetime], step_s: float,
    now_utc: dt.datetime,
) -> tuple[np.ndarray, np.ndarray]:
    """Per step: is the grid out, and is that outage known to the controller at ``now_utc``.

    A step is out when any part of it overlaps an outage window (a device sees the loss at
    once and stays islanded until the step ends).

    Returns
    -------
    (out, known) : tuple of ndarray of bool, shape (T,)
        ``out`` true where the grid is unavailable; ``known`` true where that is because of a
        window the controller has been warned of, or that has already begun, by ``now_utc``.
    """
    n_steps = len(step_starts_utc)
    out = np.zeros(n_steps, dtype=bool)
    known = np.zeros(n_steps, dtype=bool)
    step = dt.timedelta(seconds=step_s)
    for window in outages:
        announced = now_utc >= window.warned_from_utc or now_utc >= window.start_utc
        for i, start in enumerate(step_starts_utc):
            if start < window.end_utc and start + step > window.start_utc:
                out[i] = True
                known[i] = known[i] or announced
    return out, known

"""The settlement readings file: cumulative counters per member channel at period boundaries.

Format (CSV, UTF-8, one header line; lines starting with ``#`` are comments)::

    timestamp,member_id,channel,import_kwh,export_kwh
    2026-08-01T00:00:00+09:00,home-1,grid,10234.512,812.004
    2026-08-01T00:00:00+09:00,home-1,link:link-home-1-home-2,55.210,301.877

- ``timestamp``: ISO 8601 with a UTC offset (``Z`` or ``+09:00``), on a JST half hour: the
  counters read at that period boundary.
- ``member_id``: a node id of the site file.
- ``channel``: ``grid`` (the member's grid meter), ``link:<link id>`` (the leg of the member's
  router on that link) or ``pv`` (optional: the member's PV inverters' production counter, with
  ``export_kwh`` 0; recorded for publication, ignored by the settlement).
- ``import_kwh``: cumulative energy *into* the member (grid import; router inflow from the link)
  [kWh]; ``export_kwh``: cumulative energy *out of* it (grid export; router outflow) [kWh].

Period ``[t, t + 30 min)`` is settled from the rows at ``t`` and ``t + 30 min``; a row missing at
either end leaves that channel incomplete (the period is settled and flagged).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from collections.abc import Collection, Iterable
from decimal import Decimal, InvalidOperation

from gridctl.settlement.model import ChannelReading, CounterSource, PeriodReadings

HEADER = ("timestamp", "member_id", "channel", "import_kwh", "export_kwh")
PERIOD = dt.timedelta(minutes=30)

Counters = dict[tuple[str, str], tuple[Decimal, Decimal]]


class ReadingsFileError(ValueError):
    """A readings file is malformed; the message names the file and line."""


def _parse_time(text: str, where: str) -> dt.datetime:
    try:
        stamp = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ReadingsFileError(f"{where}: timestamp '{text}' is not ISO 8601") from None
    if stamp.tzinfo is None:
        raise ReadingsFileError(f"{where}: timestamp '{text}' has no UTC offset")
    stamp = stamp.astimezone(dt.timezone.utc)
    # JST is UTC+9, so JST half hours are UTC half hours.
    if stamp.minute % 30 or stamp.second or stamp.microsecond:
        raise ReadingsFileError(f"{where}: timestamp '{text}' is not on a 30-minute boundary")
    return stamp


def _parse_kwh(text: str, column: str, where: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ReadingsFileError(f"{where}: {column} '{text}' is not a number") from None
    if not value.is_finite() or value < 0:
        raise ReadingsFileError(f"{where}: {column} '{text}' must be a finite number >= 0")
    return value


def parse_readings(text: str, source: str = "<readings>") -> dict[dt.datetime, Counters]:
    """Parse a readings file into counters by boundary time (UTC) and (member, channel)."""
    reader = csv.reader(line for line in io.StringIO(text) if not line.lstrip().startswith("#"))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != HEADER:
        raise ReadingsFileError(f"{source}:1: header must be '{','.join(HEADER)}'")
    boundaries: dict[dt.datetime, Counters] = defaultdict(dict)
    for row in reader:
        where = f"{source}:{reader.line_num}"
        if not row:
            continue
        if len(row) != len(HEADER):
            raise ReadingsFileError(f"{where}: expected {len(HEADER)} columns, got {len(row)}")
        stamp = _parse_time(row[0], where)
        key = (row[1].strip(), row[2].strip())
        if key in boundaries[stamp]:
            raise ReadingsFileError(f"{where}: duplicate reading for {key[0]} {key[1]} at {row[0]}")
        boundaries[stamp][key] = (_parse_kwh(row[3], "import_kwh", where), _parse_kwh(row[4], "export_kwh", where))
    if not boundaries:
        raise ReadingsFileError(f"{source}: no readings")
    return dict(boundaries)


def periods_from_counters(
    boundaries: dict[dt.datetime, Counters],
    start_utc: dt.datetime | None = None,
    end_utc: dt.datetime | None = None,
) -> list[PeriodReadings]:
    """Every period between the first and last boundary (optionally within ``[start, end)``)."""
    first, last = min(boundaries), max(boundaries)
    periods = []
    t = first
    while t + PERIOD <= last:
        if (start_utc is None or t >= start_utc) and (end_utc is None or t + PERIOD <= end_utc):
            periods.append(period_readings(t, boundaries.get(t, {}), boundaries.get(t + PERIOD, {})))
        t += PERIOD
    return periods


def _exact(pair: tuple | None) -> tuple[Decimal, Decimal] | None:
    # Driver counters are floats: go through str() so 1234.5 stays 1234.5, not its binary value.
    return None if pair is None else (Decimal(str(pair[0])), Decimal(str(pair[1])))


def period_readings(start_utc: dt.datetime, at_start: Counters, at_end: Counters,
                    fixed_point: Collection[tuple[str, str]] = ()) -> PeriodReadings:
    """Build a period's readings from the counters at its two boundaries.

    This is also how the daemon and the simulator build :class:`PeriodReadings`: snapshot the
    cumulative counters ``{(member_id, channel): (import_kwh, export_kwh)}`` [kWh, Decimal or
    float] at each boundary; a channel absent at either boundary is left incomplete.
    ``fixed_point`` names the channels whose counters are a meter's fixed 30-minute values
    (the simulator's smart meters): their boundaries are marked
    :attr:`CounterSource.FIXED_POINT` (:attr:`CounterSource.LIVE_FALLBACK` where absent).
    """
    if start_utc.tzinfo is None:
        raise ValueError("period start must be timezone-aware")
    start_utc = start_utc.astimezone(dt.timezone.utc)
    channels = []
    for member_id, channel in sorted(set(at_start) | set(at_end)):
        s = _exact(at_start.get((member_id, channel)))
        e = _exact(at_end.get((member_id, channel)))
        fixed = (member_id, channel) in fixed_point
        channels.append(
            ChannelReading(
                member_id=member_id, channel=channel,
                start_import_kwh=s[0] if s else None, start_export_kwh=s[1] if s else None,
                end_import_kwh=e[0] if e else None, end_export_kwh=e[1] if e else None,
                start_source=_fixed_source(s) if fixed else None,
                end_source=_fixed_source(e) if fixed else None,
            )
        )
    return PeriodReadings(start_utc=start_utc, channels=tuple(channels))


def _fixed_source(pair: tuple | None) -> CounterSource:
    return CounterSource.FIXED_POINT if pair is not None else CounterSource.LIVE_FALLBACK


def format_readings(rows: Iterable[tuple[dt.datetime, str, str, Decimal, Decimal]]) -> str:
    """Write rows ``(timestamp_utc, member_id, channel, import_kwh, export_kwh)`` as a file."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for stamp, member_id, channel, imp, exp in rows:
        writer.writerow([stamp.isoformat().replace("+00:00", "Z"), member_id, channel, str(imp), str(exp)])
    return out.getvalue()

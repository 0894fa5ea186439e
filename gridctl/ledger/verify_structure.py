"""The shape of a ledger, read once: every body decoded, revisions, reversals, readings, continuity.

Used by :func:`gridctl.ledger.verify.verify_ledger`. Everything is read in two queries (the
entries and the readings) and checked in memory, so a year (17,520 periods) costs no
per-period query. Each check returns the first problem as one line naming the entry or the
period, or None; nothing here raises on a damaged body.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from gridctl.ledger.store import GENESIS_HASH, entry_hash
from gridctl.settlement.codec import member_from_dict, period_from_dict
from gridctl.settlement.model import MemberLine, PeriodReadings, PeriodSettlement

PERIOD = dt.timedelta(minutes=30)
UTC = dt.timezone.utc
#: Raw entry row: (seq, period_start_utc, revision, kind, member_id, sign, body, prev_hash, hash).
Row = tuple[int, str, int, str, str, int, str, str, str]
_DECODE_ERRORS = (ArithmeticError, AttributeError, KeyError, TypeError, ValueError)


class Problem(Exception):
    """The first thing wrong, as one line (internal to verification)."""


def entry_name(row: Row) -> str:
    """``entry 42 (period 2026-08-01T00:00:00+00:00, member home-1, revision 1)``."""
    seq, period, revision, kind, member = row[:5]
    who = f"{kind} {member}" if member else kind
    return f"entry {seq} (period {period}, {who}, revision {revision})"


def check_chain(rows: Sequence[Row]) -> None:
    """Each entry's ``prev_hash`` is its predecessor's hash and its own hash is right."""
    prev = GENESIS_HASH
    for row in rows:
        seq, period, revision, kind, member, sign, body, prev_hash, digest = row
        if prev_hash != prev:
            raise Problem(f"{entry_name(row)}: chain broken (prev_hash does not match the entry before)")
        if entry_hash(prev, period, revision, kind, member, sign, body) != digest:
            raise Problem(f"{entry_name(row)}: hash mismatch (entry was altered)")
        prev = digest


@dataclass
class Revision:
    """The entries of one revision of one period: ``+1`` (settled) and ``-1`` (reversed) rows."""

    plus: list[Row] = field(default_factory=list)
    minus: list[Row] = field(default_factory=list)


@dataclass
class Shape:
    """The decoded ledger: periods by start (UTC), their revisions, gaps and openings."""

    periods: dict[dt.datetime, dict[int, Revision]] = field(default_factory=dict)
    members: dict[int, MemberLine] = field(default_factory=dict)  # by seq
    blocks: dict[int, PeriodSettlement] = field(default_factory=dict)  # by seq, without members
    member_ids: dict[int, list[str]] = field(default_factory=dict)  # of each period entry, by seq
    gaps: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)

    def current(self) -> Iterable[tuple[PeriodSettlement, int]]:
        """The current settlement and revision of every period, by period start."""
        for start in sorted(self.periods):
            revisions = self.periods[start]
            latest = max(revisions)
            rows = revisions[latest].plus
            block = next(self.blocks[r[0]] for r in rows if r[3] == "period")
            members = tuple(self.members[r[0]] for r in rows if r[3] == "member")
            yield dataclasses.replace(block, members=members), latest


def _period_start(row: Row) -> dt.datetime:
    """The entry's period start: stored as UTC ISO 8601, on a 30-minute boundary."""
    text = row[1]
    try:
        start = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise Problem(f"{entry_name(row)}: period start '{text}' is not a time") from None
    if start.tzinfo is None or start.astimezone(UTC).isoformat() != text:
        raise Problem(f"{entry_name(row)}: period start '{text}' is not in the stored form (UTC ISO 8601)")
    if row[3] in ("period", "member", "gap") and (start.minute % 30 or start.second or start.microsecond):
        raise Problem(f"{entry_name(row)}: period start '{text}' is not on a 30-minute boundary")
    return start


def _finite(values: Iterable[Any]) -> bool:
    return all(v.is_finite() for v in values if isinstance(v, Decimal))


def _decode(row: Row, shape: Shape) -> None:
    seq, _, _, kind, member, _, body = row[:7]
    data = json.loads(body)
    if not isinstance(data, dict):
        raise TypeError("not an object")
    if kind == "member":
        line = member_from_dict(data)
        if line.member_id != member or not _finite(vars(line).values()):
            raise ValueError("member id or a number")
        shape.members[seq] = line
    elif kind == "period":
        block = period_from_dict(data, ())
        if not _finite(vars(block).values()) or block.start_utc != _period_start(row):
            raise ValueError("start or a number")
        shape.blocks[seq] = block
        shape.member_ids[seq] = [str(m) for m in data["member_ids"]]
    elif kind == "opening":
        kwh = Decimal(data["grid_import_kwh"])
        if not kwh.is_finite() or kwh < 0:
            raise ValueError("grid_import_kwh")
    elif kind == "gap":
        end = dt.datetime.fromisoformat(data["end_utc"])
        start = _period_start(row)
        if end.tzinfo is None or end <= start or (end - start) % PERIOD:
            raise ValueError("end_utc")
        shape.gaps.append((start, end))


def decode(rows: Sequence[Row]) -> Shape:
    """Decode every body and group the settlement entries by period and revision."""
    shape = Shape()
    for row in rows:
        seq, _, revision, kind, _, sign = row[:6]
        start = _period_start(row)
        try:
            _decode(row, shape)
        except json.JSONDecodeError:
            raise Problem(f"{entry_name(row)}: body is not JSON") from None
        except KeyError as exc:
            raise Problem(f"{entry_name(row)}: body lacks the field {exc}") from None
        except _DECODE_ERRORS:
            raise Problem(f"{entry_name(row)}: body holds a value that is not what a {kind} entry must have"
                          " (a number, a time, its member)") from None
        if kind in ("opening", "gap"):
            if sign != 1 or revision != 1:
                raise Problem(f"{entry_name(row)}: an {kind} entry is never revised or reversed")
            continue
        group = shape.periods.setdefault(start, {}).setdefault(revision, Revision())
        (group.plus if sign == 1 else group.minus).append(row)
    return shape


def _key(row: Row) -> tuple[str, str, str]:
    return row[3], row[4], row[6]


def check_revisions(shape: Shape) -> None:
    """Revisions 1..n without holes; each complete; each before the last reversed exactly once."""
    for start in sorted(shape.periods):
        revisions = shape.periods[start]
        where = f"period {start.isoformat()}"
        latest = max(revisions)
        for number in range(1, latest + 1):
            group = revisions.get(number)
            if group is None or not group.plus:
                raise Problem(f"{where}: revision {number} is missing (revisions are {_listed(revisions)})")
            kinds = Counter(r[3] for r in group.plus)
            members = Counter(r[4] for r in group.plus if r[3] == "member")
            if kinds["period"] != 1 or any(n > 1 for n in members.values()):
                first = group.plus[0]
                raise Problem(f"{entry_name(first)}: revision {number} has {kinds['period']} period entries and "
                              f"{kinds['member']} member entries for {len(members)} members (duplicated or deleted)")
            seq = next(r[0] for r in group.plus if r[3] == "period")
            if set(members) != set(shape.member_ids[seq]):
                raise Problem(f"{where} revision {number}: member entries do not match the block's members"
                              " (an entry deleted or added)")
            _check_reversal(where, number, number == latest, group)


def _check_reversal(where: str, number: int, is_latest: bool, group: Revision) -> None:
    if is_latest:
        if group.minus:
            raise Problem(f"{entry_name(group.minus[0])}: reversal of the current revision with no later"
                          " revision (orphan reversal)")
        return
    if Counter(map(_key, group.plus)) != Counter(map(_key, group.minus)):
        extra = Counter(map(_key, group.minus)) - Counter(map(_key, group.plus))
        bad = next((r for r in group.minus if _key(r) in extra), None)
        if bad is not None:
            raise Problem(f"{entry_name(bad)}: reversal pairs with no entry of revision {number} (orphan reversal)")
        raise Problem(f"{where} revision {number}: superseded but not reversed completely, exactly once")
    if max(r[0] for r in group.plus) > min(r[0] for r in group.minus):
        raise Problem(f"{where} revision {number}: reversed before it was recorded")


def _listed(revisions: dict[int, Revision]) -> str:
    return ", ".join(str(n) for n in sorted(n for n, g in revisions.items() if g.plus)) or "none"


def check_readings(shape: Shape, rows: Sequence[tuple[str, int, str, str]]) -> dict[tuple[dt.datetime, int], PeriodReadings]:
    """Every revision's readings exist, hash right and match its period entry; none without entries."""
    stored: dict[tuple[dt.datetime, int], PeriodReadings] = {}
    for period, revision, sha, body in rows:
        where = f"readings of period {period} revision {revision}"
        try:
            start = dt.datetime.fromisoformat(period)
            readings = PeriodReadings.from_json(body)
        except _DECODE_ERRORS:
            raise Problem(f"{where}: body is not JSON readings") from None
        if readings.sha256() != sha or readings.start_utc != start:
            raise Problem(f"{where}: hash mismatch (altered)")
        if revision not in shape.periods.get(start, {}):
            raise Problem(f"{where}: no entries of that revision (entries deleted)")
        stored[start, revision] = readings
    for start in sorted(shape.periods):
        for number, group in sorted(shape.periods[start].items()):
            readings = stored.get((start, number))
            if readings is None:
                raise Problem(f"period {start.isoformat()} revision {number}: readings missing")
            block = next(shape.blocks[r[0]] for r in group.plus if r[3] == "period")
            if block.readings_sha256 != readings.sha256():
                raise Problem(f"period {start.isoformat()} revision {number}: readings do not match the"
                              " settlement's readings hash (rewritten)")
    return stored


def check_continuity(shape: Shape) -> int:
    """Every 30-minute period from the first to the last is settled or inside a declared gap.

    Returns the number of periods the declared gaps cover.
    """
    starts = sorted(shape.periods)
    gaps = sorted(shape.gaps)
    for before, after in zip(starts, starts[1:]):
        missing = before + PERIOD
        while missing < after:
            cover = next((end for start, end in gaps if start <= missing < end), None)
            if cover is None:
                raise Problem(f"period {missing.isoformat()} is missing (no entries between {before.isoformat()}"
                              f" and {after.isoformat()}, and no gap declared)")
            missing = cover
    for start, end in gaps:
        inside = [s for s in starts if start <= s < end]
        if inside:
            raise Problem(f"gap {start.isoformat()}..{end.isoformat()}: period {inside[0].isoformat()} inside it"
                          " is settled")
    return sum((end - start) // PERIOD for start, end in gaps)
